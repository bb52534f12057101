mod access;
mod checkins;
mod durability;
mod helpers;
mod rotation;
mod trust;
mod venues;
mod verify;

mod access;
mod checkins;
mod durability;
mod helpers;
mod trust;
mod venues;
mod verify;

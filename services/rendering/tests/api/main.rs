mod access;
mod cluster;
mod codes;
mod fallback;
mod helpers;

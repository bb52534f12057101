mod codes;
mod fallback;
mod helpers;

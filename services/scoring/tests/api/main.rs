mod access;
mod appeals;
mod flow;
mod helpers;
mod lookup;
mod risk;
mod roles;
mod rules;

//! `ringkeeper` binary entry point.
fn main() {}

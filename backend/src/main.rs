//! The Cryptera signing service binary.
fn main() {}

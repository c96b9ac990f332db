//! The Cryptera signing service library.

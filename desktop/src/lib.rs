//! ChatApp for the desktop.

pub mod keychain;
pub mod recorder;

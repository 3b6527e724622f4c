//! What the users do: the dataset they search and write, the operations, and how failures are
//! classified.

pub mod dataset;
pub mod failure;
pub mod ops;

//! placeholder docs
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod error;
pub mod generate;
pub mod io;
pub mod models;

pub use error::{Error, Result};
pub mod metrics;
pub mod period;
pub mod report;

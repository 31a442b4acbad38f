//! placeholder
pub mod deployments;

//! The end-to-end test harness of acidizer: it runs the built binaries — `acidizer serve` on either store, and
//! `acidizer-api` as Lambda runs it — and talks to them over HTTP, as users do.

pub mod app;
pub mod binaries;
pub mod cloudformation;
pub mod contract;
pub mod deploy_job;
pub mod dynamo_model;
pub mod dynamodb_local;
pub mod emf;
pub mod fault_proxy;
pub mod lambda;
pub mod load;
pub mod management_api;
pub mod mount;
pub mod powercut;
pub mod store_contract;
pub mod stream_records;
pub mod ws;

pub use app::{App, Target};

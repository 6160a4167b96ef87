//! What every attribute shares: reading options and their values, the annotated function, key
//! templates and the default key, and the code every expansion starts with.

pub mod codegen;
pub mod duration;
pub mod errors;
pub mod function;
pub mod key;
pub mod literal;
pub mod mode;
pub mod options;
pub mod template;

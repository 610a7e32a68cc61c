//! The tfctl app-file model: KDL parsing, validation with miette diagnostics, and the vocabulary
//! reference. Nothing here touches the host beyond reading the files an app file names.

pub mod model;

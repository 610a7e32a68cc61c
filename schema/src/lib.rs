//! The tfctl app-file model.

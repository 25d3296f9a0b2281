//! The ringkeeper daemon (see DESIGN.md in ../shared for the role diagram).

pub mod config;
pub mod four_letter;

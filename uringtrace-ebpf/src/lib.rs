#![no_std]
// This file exists so uringtrace can name this crate as a build-dependency
// (which needs a library target); the programs are in main.rs.

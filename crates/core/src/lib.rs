//! logship core (in progress)

//! tracing layer shipping jKool events, activities and snapshots over HTTPS (in progress)

//! tracing layer shipping to Fluentd / Fluent Bit over the Forward protocol v1 (in progress)

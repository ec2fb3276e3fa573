//! tracing layer shipping to Azure Data Explorer (Kusto) by streaming or queued ingestion (in progress)

//! tracing layer shipping Elastic Common Schema documents and span timers to Elasticsearch / OpenSearch (in progress)

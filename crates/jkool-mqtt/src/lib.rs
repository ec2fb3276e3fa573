//! tracing layer shipping jKool documents through an MQTT broker (in progress)

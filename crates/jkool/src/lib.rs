//! The jKool document model (events, activities, snapshots) shared by logship-jkool-http and logship-jkool-mqtt (in progress)

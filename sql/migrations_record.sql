-- Records that migration $1, whose file has checksum $2, was applied.
INSERT INTO schema_migrations (version, checksum)
VALUES ($1, $2)

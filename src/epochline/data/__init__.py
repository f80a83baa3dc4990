"""Reading, checking and shaping the tables: sources, schema, preprocessing, splits."""

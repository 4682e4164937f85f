"""Model cards: the schema, pre-fill from the registry, services, exports (JSON, MCT, Markdown) and the PDF."""

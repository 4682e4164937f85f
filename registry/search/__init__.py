"""The search filter language: the parser (text to a syntax tree) and the compiler (tree to querysets)."""

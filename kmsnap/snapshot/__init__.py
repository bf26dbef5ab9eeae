"""Snapshot <-> directory: layout and slugs, canonical YAML, the strict reader, the atomic
replace, selection and the shrink guard."""

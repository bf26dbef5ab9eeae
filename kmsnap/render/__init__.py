"""ChangeSets to text, markdown, json and github annotations. Pure: returns str."""

"""Pure helpers with no project imports."""

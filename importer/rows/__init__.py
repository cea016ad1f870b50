"""A row, mapped and checked: the mapping, cells, dates, people, the API's rules."""

"""What the tests share, in one place: the worked example and other years as commands
(`worked_example`, `years`, `generated_years`, `scenario`, `corrected_scheme`, `hostile`), the read
models beside the direct computation (`read_models`), a served world for HTTP and the pages
(`http_world`, `pages_kit`), the command line (`cli_kit`) and a PostgreSQL server of a test's own
(`private_pg`). Test modules import from here, never from one another."""

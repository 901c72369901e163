//! Prints the table catalogue as Markdown (the README's "Table catalogue" section).
fn main() {
    print!("{}", lake_schema::catalogue_markdown());
}

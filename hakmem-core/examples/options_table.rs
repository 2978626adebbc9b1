//! Prints the README's option table from the policy table:
//! `cargo run -q -p hakmem-core --example options_table`.
fn main() {
    let mut s = String::new();
    hakmem_core::policy::write_markdown_table(&mut s).unwrap();
    print!("{s}");
}

//! Compile tests of the attributes: what compiles, and the errors users see when it does not.
//! Regenerate the expected errors with `TRYBUILD=overwrite cargo test --test ui`, then read
//! every `.stderr`: it is the user's experience.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}

//! Templates: splitting, rendering, references, offsets.

use super::*;

fn render(text: &str) -> String {
    let t = Template::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    t.render(&cx()).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

fn refs(text: &str) -> Vec<(String, String)> {
    Template::parse(text)
        .unwrap_or_else(|e| panic!("{text}: {e:?}"))
        .references()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn renders_values_like_github() {
    assert_eq!(
        render("os=${{ matrix.os }} shard=${{matrix.shard}}"),
        "os=linux shard=2"
    );
    assert_eq!(render("[${{ env.NOPE }}]"), "[]");
    assert_eq!(render("${{ inputs.yes }} ${{ inputs.f }}"), "true 1.5");
    assert_eq!(render("${{ matrix.flags }}"), "[\n  \"a\",\n  \"b\"\n]");
    assert_eq!(render("${{ format('{{0}}') }}!"), "{0}!");
    assert_eq!(render("${{ 'a}}b' }}"), "a}}b");
    assert_eq!(
        render("no expressions, $HOME and ${VAR} stay"),
        "no expressions, $HOME and ${VAR} stay"
    );
    assert_eq!(render(""), "");
    assert_eq!(render("${{1}}${{2}}"), "12");
    assert_eq!(render("é${{ 'ü' }}é"), "éüé");
}

#[test]
fn literal_fast_path() {
    let t = Template::parse("plain $text {{ }}").unwrap();
    assert!(t.is_literal());
    assert_eq!(t.as_literal(), Some("plain $text {{ }}"));
    let t = Template::parse("x ${{ 1 }}").unwrap();
    assert!(!t.is_literal());
    assert_eq!(t.as_literal(), None);
    assert!(Template::default().is_literal());
}

#[test]
fn errors_are_relative_to_the_whole_template() {
    let e = Template::parse("echo ${{ matrix.os == }} done").unwrap_err();
    assert_eq!(
        (e.message.as_str(), e.offset),
        ("unexpected end of expression: expected a value", 22..22)
    );
    let e = Template::parse("a ${{ 1 }} b ${{ env.X").unwrap_err();
    assert_eq!(
        (e.message.as_str(), e.offset, e.help.as_deref()),
        (
            "unterminated `${{`",
            13..16,
            Some("close the expression with `}}`")
        )
    );
    let e = Template::parse("${{ 'open }}").unwrap_err();
    assert_eq!((e.message.as_str(), e.offset), ("unterminated `${{`", 0..3));
    let e = Template::parse("x ${{ }}").unwrap_err();
    assert_eq!((e.message.as_str(), e.offset), ("empty expression", 5..6));
    let e = Template::parse("x ${{ \"q\" }}").unwrap_err();
    assert_eq!((e.message.as_str(), e.offset), ("unexpected `\"`", 6..9));
}

#[test]
fn run_time_errors_are_relative_to_the_whole_template() {
    let t = Template::parse("v=${{ fromJSON('x') }}").unwrap();
    let e = t.render(&cx()).unwrap_err();
    assert_eq!(e.offset, 6..19);
}

#[test]
fn references_name_context_and_first_property() {
    assert_eq!(
        refs("${{ secrets.TOKEN }} ${{ needs.build.outputs.x }} ${{ secrets['OTHER'] }}"),
        pairs(&[
            ("secrets", "TOKEN"),
            ("needs", "build"),
            ("secrets", "OTHER")
        ])
    );
    assert_eq!(
        refs("${{ toJSON(secrets) }} ${{ matrix[env.K] }} ${{ steps.*.outputs }}"),
        pairs(&[("secrets", ""), ("matrix", ""), ("env", "K"), ("steps", "")])
    );
    assert_eq!(
        refs("${{ contains(github.ref, 'x') && !vars.A || fromJSON(inputs.j).k }}"),
        pairs(&[("github", "ref"), ("vars", "A"), ("inputs", "j")])
    );
    assert_eq!(
        refs("${{ secrets.A }}${{ secrets.A }}"),
        pairs(&[("secrets", "A")]),
        "each pair once"
    );
    assert_eq!(refs("${{ success() && 'lit' }} plain"), pairs(&[]));
}

#[test]
fn located_references_point_into_the_template() {
    let t = Template::parse("a ${{ secrets.T }} ${{ needs.b.result }}").unwrap();
    let located: Vec<_> = t
        .located_references()
        .into_iter()
        .map(|r| (r.context, r.name, r.offset))
        .collect();
    assert_eq!(
        located,
        [
            ("secrets".to_owned(), "T".to_owned(), 6..15),
            ("needs".to_owned(), "b".to_owned(), 23..30),
        ]
    );
    assert_eq!(&t.text[23..30], "needs.b");
}

#[test]
fn template_check() {
    let t = Template::parse("ok ${{ env.A }} bad ${{ gihtub.sha }}").unwrap();
    let e = t.check(&["env", "github"]).unwrap_err();
    assert_eq!(
        (e.message.as_str(), e.offset, e.help.as_deref()),
        (
            "unknown context `gihtub`",
            24..30,
            Some("did you mean `github`?")
        )
    );
}

#[test]
fn expressions_iterator_gives_offsets() {
    let t = Template::parse("a${{ 1 }}b${{x}}").unwrap();
    let found: Vec<(&str, usize)> = t
        .expressions()
        .map(|(e, at)| (e.text.as_str(), at))
        .collect();
    assert_eq!(found, [(" 1 ", 4), ("x", 13)]);
}

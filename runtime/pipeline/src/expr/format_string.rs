//! `format('{0} and {1}', a, b)` strings: `{N}` placeholders, `{{`/`}}`
//! for literal braces, anything else is an error (as on GitHub).

/// Checks `fmt` against `args` arguments without rendering it.
pub(super) fn check(fmt: &str, args: usize) -> Result<(), String> {
    walk(fmt, args, &mut |_| {})
}

/// Renders `fmt` with `args` substituted, or says what is wrong with it.
pub(super) fn render(fmt: &str, args: &[String]) -> Result<String, String> {
    let mut pieces: Vec<Piece> = Vec::new();
    walk(fmt, args.len(), &mut |p| pieces.push(p))?;
    let mut out = String::with_capacity(fmt.len());
    for p in pieces {
        match p {
            Piece::Lit(a, b) => out.push_str(&fmt[a..b]),
            Piece::Arg(i) => out.push_str(&args[i]),
        }
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Piece {
    Lit(usize, usize),
    Arg(usize),
}

fn walk(fmt: &str, args: usize, emit: &mut dyn FnMut(Piece)) -> Result<(), String> {
    let bytes = fmt.as_bytes();
    let mut i = 0;
    let mut run = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                emit(Piece::Lit(run, i + 1));
                i += 2;
                run = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                emit(Piece::Lit(run, i + 1));
                i += 2;
                run = i;
            }
            b'{' => {
                let close = fmt[i..]
                    .find('}')
                    .ok_or_else(|| "unclosed `{` in format string".to_owned())?;
                let inner = &fmt[i + 1..i + close];
                let index: usize = inner
                    .parse()
                    .ok()
                    .filter(|_| inner.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| format!("invalid placeholder `{{{inner}}}` in format string"))?;
                if index >= args {
                    return Err(format!(
                        "format string uses `{{{index}}}` but only {args} argument{} follow{}",
                        if args == 1 { "" } else { "s" },
                        if args == 1 { "s" } else { "" },
                    ));
                }
                emit(Piece::Lit(run, i));
                emit(Piece::Arg(index));
                i += close + 1;
                run = i;
            }
            b'}' => return Err("unmatched `}` in format string".to_owned()),
            _ => i += 1,
        }
    }
    emit(Piece::Lit(run, bytes.len()));
    Ok(())
}

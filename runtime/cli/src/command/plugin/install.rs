//! `kiln plugin install REF`: fetch, verify, store, pin.

use std::path::PathBuf;

use kiln_fetch::{Lockfile, Reference, Resolver};

use crate::error::CliError;

/// `kiln plugin install`.
#[derive(Debug, clap::Args)]
pub(crate) struct InstallArgs {
    /// The plugin: `./x.wasm`, `kiln/name@1`, `https://…#sha256=…`, `oci://registry/repo:tag`
    pub reference: String,
    /// Pin it in the kiln.lock beside this pipeline [default: the pipeline in the current directory, if any]
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Runs `kiln plugin install`. A tag is resolved again, so installing is
/// also how a moved tag's new content is accepted into `kiln.lock`.
pub(crate) fn run(args: &InstallArgs) -> Result<u8, CliError> {
    let reference = Reference::parse(&args.reference)?;
    let context = super::context(args.file.as_deref())?;
    let store = super::open_store()?;
    let client = kiln_fetch::Client::new();
    let base = super::base_dir(context.as_ref());
    let resolver = Resolver::new(&store, &client, super::bundled(), &base);
    let component = resolver.install(&reference)?;
    println!("installed {reference}");
    println!("  digest  sha256:{}", component.digest);
    println!("  size    {}", super::size(component.bytes.len() as u64));
    println!("  source  {}", component.origin.location);
    match context {
        Some(located) => {
            let mut lock = Lockfile::load(&super::pipeline::lock_path(&located))?;
            let name = lock.path().display().to_string();
            match lock.set(&reference.to_string(), component.pin()) {
                Some(old) if old.digest != component.digest => {
                    println!("re-pinned in {name} (was sha256:{})", old.digest)
                }
                _ if lock.is_dirty() => println!("pinned in {name}"),
                _ => println!("already pinned in {name}"),
            }
            lock.save()?;
        }
        None => println!(
            "not pinned: no pipeline here (run it in the pipeline's directory, or pass --file)"
        ),
    }
    Ok(0)
}

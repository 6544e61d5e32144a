//! Images: present locally, pulled by policy, never pulled by a check.

use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;
use kiln_pipeline::PullPolicy;

use crate::engine::{Engine, api, is_not_found};
use crate::error::{DockerError, Result};

/// Whether `image` is present locally.
pub async fn exists(engine: &Engine, image: &str) -> Result<bool> {
    let docker = engine.client().await?;
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api(format!("inspect image `{image}`"))(e)),
    }
}

/// Makes sure `image` is there, pulling as `policy` allows.
pub(crate) async fn ensure(engine: &Engine, image: &str, policy: PullPolicy) -> Result<()> {
    if policy != PullPolicy::Always && engine.known_present(image) {
        return Ok(());
    }
    ensure_uncached(engine, image, policy).await?;
    engine.saw_present(image);
    Ok(())
}

/// Whether a create failed only because its image is not present (the
/// engine's 404 says so; a missing network is a 404 too).
pub(crate) fn is_missing(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message,
        } if message.contains("No such image")
    )
}

/// Provides `image` after a create found it missing: pulls it unless
/// `policy` is `never`, which is the missing-image error itself.
pub(crate) async fn provide_missing(
    engine: &Engine,
    image: &str,
    policy: PullPolicy,
) -> Result<()> {
    match policy {
        PullPolicy::Never => Err(DockerError::ImageMissing {
            image: image.to_owned(),
            why: "`pull: never` forbids pulling it".into(),
        }),
        PullPolicy::IfMissing | PullPolicy::Always => pull(engine, image).await,
    }?;
    engine.saw_present(image);
    Ok(())
}

async fn ensure_uncached(engine: &Engine, image: &str, policy: PullPolicy) -> Result<()> {
    match policy {
        PullPolicy::Never if exists(engine, image).await? => Ok(()),
        PullPolicy::Never => Err(DockerError::ImageMissing {
            image: image.to_owned(),
            why: "`pull: never` forbids pulling it".into(),
        }),
        PullPolicy::IfMissing if exists(engine, image).await? => Ok(()),
        PullPolicy::IfMissing | PullPolicy::Always => pull(engine, image).await,
    }
}

async fn pull(engine: &Engine, image: &str) -> Result<()> {
    let docker = engine.client().await?;
    let options = CreateImageOptions {
        from_image: Some(image.to_owned()),
        ..Default::default()
    };
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(item) = progress.next().await {
        if let Err(e) = item {
            return Err(DockerError::ImageMissing {
                image: image.to_owned(),
                why: format!("pulling it failed ({})", pull_cause(&e)),
            });
        }
    }
    Ok(())
}

fn pull_cause(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

//! The guest's side of a clean-room session over HTTP: fetch the host's blinded identifiers,
//! answer, and send the decrypted masked sum. The cryptography is the engine's; this carries
//! the messages.

use std::sync::Arc;
use std::time::Duration;

use consentric_engine::cleanroom::{GuestBlinded, GuestRun, GuestSum, HostBlinded, HostCount};
use consentric_engine::{Engine, EngineError};

/// Why a run failed. Once it started, the joined session is marked aborted.
#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    /// This side would not start the run (no joined session with this id, expired, already
    /// run); nothing was sent, and only an expired session was marked aborted.
    #[error(transparent)]
    NotStarted(EngineError),
    /// The host could not be reached or sent something unreadable.
    #[error("the host: {0}")]
    Transport(String),
    /// The host refused a step.
    #[error("the host refused ({status}): {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its error body.
        body: String,
    },
    /// Our side refused the host's answer, or could not record the outcome.
    #[error("this side refused the host's answer: {0}")]
    Engine(#[from] EngineError),
    /// The run's task panicked: our fault, not the host's.
    #[error("the run stopped: {0}")]
    Panicked(String),
}

/// Most of a host's refusal kept in ours.
const MAX_REFUSAL_CHARS: usize = 500;

/// The guest's HTTP client: TLS verified against the platform's roots and `extra_roots` (a
/// private CA), straight to the host the session names — no proxy from the environment (it
/// would see a loopback session's token in the clear), no redirect (it would carry the blinded
/// sets to another host) — and bounded waits, so that a host that never answers cannot hold a
/// run for ever.
///
/// # Errors
/// The TLS configuration could not be built.
pub fn client(extra_roots: Vec<reqwest::Certificate>) -> Result<reqwest::Client, PartnerError> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600));
    for root in extra_roots {
        builder = builder.add_root_certificate(root);
    }
    builder
        .build()
        .map_err(|e| PartnerError::Transport(e.to_string()))
}

async fn post<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Option<String>,
) -> Result<T, PartnerError> {
    let mut req = client.post(url).bearer_auth(token);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| PartnerError::Transport(e.to_string()))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| PartnerError::Transport(e.to_string()))?;
    if !status.is_success() {
        // Kept in the answer and the audit log: a host's page of HTML is not worth keeping whole.
        let body = match text.char_indices().nth(MAX_REFUSAL_CHARS) {
            Some((end, _)) => format!("{}…", &text[..end]),
            None => text,
        };
        return Err(PartnerError::Refused {
            status: status.as_u16(),
            body,
        });
    }
    serde_json::from_str(&text).map_err(|e| PartnerError::Transport(e.to_string()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, PartnerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PartnerError::Transport(e.to_string()))?
        .map_err(PartnerError::from)
}

/// Runs joined session `id` against its host.
///
/// # Errors
/// [`PartnerError::NotStarted`] if the run could not start; otherwise a [`PartnerError`] after
/// which the session is aborted here.
pub async fn run(engine: Arc<Engine>, id: &str) -> Result<(), PartnerError> {
    let (e, i) = (engine.clone(), id.to_owned());
    let started = tokio::task::spawn_blocking(move || e.cleanroom_guest(&i))
        .await
        .map_err(|e| PartnerError::Panicked(e.to_string()))?
        .map_err(PartnerError::NotStarted)?;
    // The rounds, and the abort if they fail, run in a task of their own: a caller that goes
    // away (an HTTP client that disconnects) does not leave the session `running`.
    let id = id.to_owned();
    let rounds = tokio::spawn(async move {
        let result = run_rounds(engine.clone(), &id, started).await;
        if let Err(e) = &result {
            let (engine, session, why) = (engine.clone(), id.clone(), e.to_string());
            if let Err(abort) = blocking(move || engine.cleanroom_guest_abort(&session, &why)).await
            {
                tracing::error!(session = %id, error = %abort, "a failed clean-room run could not be marked aborted");
            }
        }
        result
    });
    rounds
        .await
        .map_err(|e| PartnerError::Panicked(e.to_string()))?
}

async fn run_rounds(engine: Arc<Engine>, id: &str, run: GuestRun) -> Result<(), PartnerError> {
    let client = client(Vec::new())?;
    let base = format!("{}/v1/cleanroom/sessions/{}", run.host_url, run.session);
    let round1: HostBlinded = post(&client, format!("{base}/blinded"), &run.token, None).await?;
    let (e, i, r1) = (engine.clone(), id.to_owned(), round1.clone());
    let (answer, secrets): (GuestBlinded, _) =
        blocking(move || e.cleanroom_guest_answer(&i, &r1)).await?;
    let body =
        serde_json::to_string(&answer).map_err(|e| PartnerError::Transport(e.to_string()))?;
    let count: HostCount =
        post(&client, format!("{base}/intersect"), &run.token, Some(body)).await?;
    let (e, c) = (engine.clone(), count.clone());
    let (reveal, secrets): (Option<GuestSum>, _) = blocking(move || {
        let reveal = e.cleanroom_guest_reveal(&secrets, &c)?;
        Ok((reveal, secrets))
    })
    .await?;
    if let Some(reveal) = reveal {
        let body =
            serde_json::to_string(&reveal).map_err(|e| PartnerError::Transport(e.to_string()))?;
        let _: serde_json::Value =
            post(&client, format!("{base}/sum"), &run.token, Some(body)).await?;
    }
    // Done only once the host accepted every round.
    let (e, i) = (engine.clone(), id.to_owned());
    blocking(move || e.cleanroom_guest_complete(&i, &secrets, &count, &round1)).await?;
    Ok(())
}

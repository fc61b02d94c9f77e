use consentric_engine::Settings;
use tracing_subscriber::EnvFilter;

/// Structured logs to stderr: `pretty` for people, `json` for machines.
pub fn init(settings: &Settings, quiet: bool) {
    let level = if quiet && std::env::var_os("CONSENTRIC_LOG").is_none() {
        "warn"
    } else {
        settings.log.level.as_str()
    };
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

//! The builder's sinks and [`Builder::build`]: what the pipeline exports to, and starting it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tracing_core::{LevelFilter, Subscriber};
use tracing_subscriber::registry::LookupSpan;

use super::{Builder, JsonlTarget};
use crate::config::Config;
use crate::error::BuildError;
use crate::flush::{Control, FlushGuard, Flusher, Lane};
use crate::layer::TallyLayer;
use crate::pipeline::Shared;
use crate::sink::{JsonlSink, Sink};
use crate::summary::Totals;

impl Builder {
    /// Sends errors, transactions, sessions and metrics to Sentry (feature `sentry`).
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidConfig`] naming the malformed part of the DSN (its keys are never
    /// repeated in the message).
    #[cfg(feature = "sentry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentry")))]
    pub fn sentry(self, dsn: &str) -> Result<Self, BuildError> {
        match crate::sink::sentry::SentryOptions::new(dsn) {
            Ok(options) => Ok(self.sentry_options(options)),
            Err(error) => {
                Err(BuildError::InvalidConfig { setting: "sentry", reason: error.to_string() })
            }
        }
    }

    /// Sends to Sentry with these options (feature `sentry`).
    #[cfg(feature = "sentry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentry")))]
    pub fn sentry_options(mut self, options: crate::sink::sentry::SentryOptions) -> Self {
        self.settings.dsc_extras = options.dsc_extras();
        self.sentry = Some(options);
        self
    }

    /// Sends metrics (and, to DogStatsD, captured errors as events) to a StatsD server or the
    /// Datadog Agent (feature `statsd`). Can be called more than once, for several servers.
    #[cfg(feature = "statsd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "statsd")))]
    pub fn statsd(mut self, options: crate::sink::statsd::StatsdOptions) -> Self {
        self.statsd.push(options);
        self
    }

    /// The StatsD servers configured (for the environment's settings to leave alone).
    #[cfg(feature = "statsd")]
    pub(crate) fn statsd_configured(&self) -> bool {
        !self.statsd.is_empty()
    }

    /// Sends metrics and captured errors to Datadog's HTTP API (feature `datadog`), no Agent
    /// needed; the site is `datadoghq.com` unless set with [`DatadogOptions`](crate::sink::datadog::DatadogOptions).
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidConfig`] saying what is wrong with the key (it is never repeated).
    #[cfg(feature = "datadog")]
    #[cfg_attr(docsrs, doc(cfg(feature = "datadog")))]
    pub fn datadog(self, api_key: &str) -> Result<Self, BuildError> {
        match crate::sink::datadog::DatadogOptions::new(api_key) {
            Ok(options) => Ok(self.datadog_options(options)),
            Err(error) => {
                Err(BuildError::InvalidConfig { setting: "datadog", reason: error.to_string() })
            }
        }
    }

    /// Sends to Datadog's HTTP API with these options (feature `datadog`).
    #[cfg(feature = "datadog")]
    #[cfg_attr(docsrs, doc(cfg(feature = "datadog")))]
    pub fn datadog_options(mut self, options: crate::sink::datadog::DatadogOptions) -> Self {
        self.datadog = Some(options);
        self
    }

    /// The Datadog options set so far (for the environment's settings to amend).
    #[cfg(feature = "datadog")]
    pub(crate) fn datadog_configured(
        &mut self,
    ) -> &mut Option<crate::sink::datadog::DatadogOptions> {
        &mut self.datadog
    }

    /// Sends to the DSN from the environment, keeping the other options already set.
    #[cfg(feature = "sentry")]
    pub(crate) fn sentry_dsn(self, dsn: crate::sink::sentry::Dsn) -> Self {
        let options = match &self.sentry {
            Some(options) => options.clone().with_dsn(dsn),
            None => crate::sink::sentry::SentryOptions::from_dsn(dsn),
        };
        self.sentry_options(options)
    }

    /// Adds a sink.
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Writes JSON lines to standard output.
    pub fn jsonl_stdout(mut self) -> Self {
        self.jsonl = Some(JsonlTarget::Stdout);
        self
    }

    /// Appends JSON lines to a file (created if needed).
    pub fn jsonl_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.jsonl = Some(JsonlTarget::File(path.into()));
        self
    }

    /// Validates the configuration, starts the flusher and returns the layer and its guard.
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidEnv`] for an unparsable environment variable,
    /// [`BuildError::InvalidConfig`] for a setting that cannot work (a zero interval or limit),
    /// [`BuildError::Sink`] when the JSON-lines file cannot be opened, [`BuildError::Spawn`]
    /// when a thread cannot be started.
    pub fn build<S>(mut self) -> Result<(TallyLayer<S>, FlushGuard), BuildError>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if let Some(error) = self.env_errors.drain(..).next() {
            return Err(error);
        }
        let config = self.validate()?;
        let mut sinks = std::mem::take(&mut self.sinks);
        match self.jsonl.take() {
            Some(JsonlTarget::Stdout) => sinks.push(Box::new(JsonlSink::stdout())),
            Some(JsonlTarget::File(path)) => {
                let sink = JsonlSink::file(&path).map_err(|source| BuildError::Sink {
                    sink: format!("jsonl ({})", path.display()),
                    source,
                })?;
                sinks.push(Box::new(sink));
            }
            None if sinks.is_empty() && !self.has_network_sink() => {
                sinks.push(Box::new(JsonlSink::stdout()));
            }
            None => {}
        }
        #[cfg(feature = "statsd")]
        for options in &self.statsd {
            options.validate(config.rollup_interval)?;
        }
        let totals = Arc::new(Mutex::new(Totals::new(config.max_series, &config.span_metric)));
        let (shared, inbox) = Shared::new(config);
        #[cfg(feature = "sentry")]
        if let Some(options) = self.sentry.take() {
            sinks.push(Box::new(crate::sink::sentry::SentrySink::new(options)));
        }
        #[cfg(feature = "datadog")]
        if let Some(options) = self.datadog.take() {
            sinks.push(Box::new(crate::sink::datadog::DatadogSink::new(options)));
        }
        #[cfg(feature = "statsd")]
        for options in self.statsd.drain(..) {
            sinks.push(Box::new(crate::sink::statsd::StatsdSink::new(options)));
        }
        let handles = sinks
            .into_iter()
            .map(|sink| {
                if shared.config.manual {
                    Ok(Lane::inline(sink, shared.clone()))
                } else {
                    Lane::spawn(sink, shared.clone())
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(BuildError::Spawn)?;
        let flusher = Flusher::new(shared.clone(), inbox, handles, totals);
        let control = Control::start(flusher).map_err(BuildError::Spawn)?;
        if shared.config.panic_hook {
            crate::panic_hook::install(Arc::downgrade(&control));
        }
        Ok((TallyLayer::new(shared), FlushGuard::new(control)))
    }

    /// Whether a sink that sends over the network is configured.
    fn has_network_sink(&self) -> bool {
        #[cfg(feature = "sentry")]
        if self.sentry.is_some() {
            return true;
        }
        #[cfg(feature = "statsd")]
        if !self.statsd.is_empty() {
            return true;
        }
        #[cfg(feature = "datadog")]
        if self.datadog.is_some() {
            return true;
        }
        false
    }

    pub(crate) fn error_rate_setting(&self) -> u32 {
        self.settings.error_rate
    }

    pub(crate) fn error_burst_setting(&self) -> u32 {
        self.settings.error_burst
    }

    pub(crate) fn breadcrumbs_setting(&self) -> usize {
        self.settings.breadcrumbs
    }

    pub(crate) fn breadcrumb_level_setting(&self) -> LevelFilter {
        self.settings.breadcrumb_level
    }

    /// The configuration the settings so far validate into.
    pub(crate) fn validate(&self) -> Result<Config, BuildError> {
        Config::try_from(self.settings.clone())
    }
}

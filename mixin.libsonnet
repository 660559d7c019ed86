// saasmon monitoring mixin (the monitoring-mixins shape): vendor this repository with
// jsonnet-bundler and import 'saasmon/mixin.libsonnet' (docs/development.md). It exposes
// prometheusRules, prometheusAlerts and grafanaDashboards, all read from the one _config.
(import 'config.libsonnet') +
(import 'alert_rules/mixin/rules.libsonnet') +
(import 'alert_rules/mixin/alerts.libsonnet') +
(import 'alert_rules/mixin/slo.libsonnet') +
(import 'dashboards/dashboards.libsonnet')

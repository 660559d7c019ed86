// saasmon monitoring mixin: config + recording rules + alerts + SLO burn-rate alerts.
(import 'config.libsonnet') +
(import 'rules.libsonnet') +
(import 'alerts.libsonnet') +
(import 'slo.libsonnet')

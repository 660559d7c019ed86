// Human-readable thresholds and durations for annotations.
{
  // Durations such as 5m, 1h, 1d multiplied by the drill time scale, in Prometheus syntax.
  scaleDuration(d, scale)::
    if scale == 1 then d else
      local units = { s: 1, m: 60, h: 3600, d: 86400 };
      local n = std.parseInt(d[:std.length(d) - 1]);
      local seconds = std.max(1, std.floor(n * units[d[std.length(d) - 1]] * scale));
      '%ds' % seconds,

  threshold(value, unit)::
    if unit == 'ratio' then std.format('%g%%', value * 100)
    else if unit == 'seconds' then (
      if value < 1 then std.format('%g ms', value * 1000)
      else if value < 120 then std.format('%g s', value)
      else if value < 7200 then std.format('%g min', value / 60)
      else if value < 172800 then std.format('%g h', value / 3600)
      else std.format('%g days', value / 86400)
    )
    else if unit == 'per_second' then (
      if value >= 1 then std.format('%g/s', value)
      else if value * 60 >= 1 then std.format('%g/min', value * 60)
      else if value * 3600 >= 1 then std.format('%g/h', value * 3600)
      else std.format('%g/day', value * 86400)
    )
    else if unit == 'bytes' then std.format('%g MiB', value / 1048576)
    else if unit == 'sar' then std.format('%g SAR', value)
    else std.format('%g', value),

  // Go template pipeline that renders $value in the signal's unit.
  valueTemplate(unit)::
    if unit == 'ratio' then '{{ $value | humanizePercentage }}'
    else if unit == 'seconds' then '{{ $value | humanizeDuration }}'
    else '{{ $value | humanize }}',
}

// The web-vitals library's reports, sent to saasmon's Web Vitals receiver (POST /beacon).
//
// Each metric is queued when the library reports it; the queue goes out in beacons of at
// most MAX_BATCH reports when the page is hidden (tab switch, navigation, reload, close),
// which is when the library reports the final CLS, INP and LCP. A string body makes
// sendBeacon and fetch send text/plain;charset=UTF-8: no CORS preflight.
//
// web-vitals v5 has no FID (INP replaced it as a Core Web Vital in 2024): FID reaches the
// receiver only from pages still running an older snippet (web-vitals v4 or earlier).
import { onCLS, onFCP, onINP, onLCP, onTTFB } from 'web-vitals';

// The receiver's default max_batch: a longer queue is split over several beacons.
export const MAX_BATCH = 20;

// options.url: the receiver's /beacon URL (required).
// options.route: () => the page's route, best your router's template ("/deals/:id");
//   defaults to location.pathname, which the receiver maps to route names by its config.
export function sendVitals(options) {
  const url = options && options.url;
  if (!url) throw new Error('saasmon web vitals: no beacon url');
  const route = (options && options.route) || (() => location.pathname);
  const queue = [];

  const add = (metric) => {
    queue.push({
      name: metric.name,
      value: metric.value,
      id: metric.id,
      rating: metric.rating,
      navigationType: metric.navigationType,
      route: route(),
    });
  };

  const flush = () => {
    while (queue.length) {
      const body = JSON.stringify(queue.splice(0, MAX_BATCH));
      // sendBeacon refuses (returns false) past the browser's in-flight quota: fetch with
      // keepalive still outlives the page.
      if (!(navigator.sendBeacon && navigator.sendBeacon(url, body))) {
        fetch(url, { method: 'POST', body, keepalive: true, credentials: 'omit' }).catch(() => {});
      }
    }
  };

  for (const on of [onCLS, onFCP, onINP, onLCP, onTTFB]) on(add);
  // Registered after the library's own (capturing) listeners, so the reports they make
  // on hiding are queued before this flush runs.
  addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') flush();
  });
  // pagehide comes before visibilitychange when a page unloads: it sends what is
  // queued already, the hidden flush the rest.
  addEventListener('pagehide', flush);
}

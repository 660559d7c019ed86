// Script-tag entry of the built bundle (dist/saasmon-vitals.js):
//   <script src="/static/saasmon-vitals.js" data-beacon-url="https://rum.example.com/beacon"
//           data-route="/deals/:id" defer></script>
// data-route is optional (location.pathname otherwise). With a bundler, import
// { sendVitals } from src/beacons.js instead.
import { sendVitals } from './beacons.js';

const script = document.currentScript;
const fixedRoute = script && script.dataset.route;
sendVitals({
  url: script && script.dataset.beaconUrl,
  route: fixedRoute ? () => fixedRoute : undefined,
});

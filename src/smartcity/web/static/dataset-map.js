// Draws a dataset's published places (its data.geojson) on the map of its page. No tile
// layer: the platform reaches no tile server, so the places stand on a plain background.
(function () {
  "use strict";
  const element = document.getElementById("map");
  if (!element || !window.L) {
    return;
  }
  const say = (text) => {
    const note = document.createElement("p");
    note.textContent = text;
    element.replaceChildren(note);
  };
  fetch(element.dataset.geojson, { headers: { Accept: "application/geo+json" } })
    .then((response) => {
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      return response.json();
    })
    .then((collection) => {
      const map = L.map(element);
      const places = L.geoJSON(collection, {
        // A marker's alt text names the record it stands for to screen reader users.
        pointToLayer: (feature, latlng) =>
          L.marker(latlng, { alt: String(feature.id || ""), title: String(feature.id || "") }),
      }).addTo(map);
      const bounds = places.getBounds();
      if (!bounds.isValid()) {
        map.remove();
        say(element.dataset.empty);
        return;
      }
      map.fitBounds(bounds, { padding: [24, 24], maxZoom: 16 });
    })
    .catch(() => say(element.dataset.failed));
})();

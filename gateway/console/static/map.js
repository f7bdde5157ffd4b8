/* SafeGrid console map: cells as polygons, open clues as markers coloured by priority, an
   alert's rings and swept cells. Tiles only when the bureau's own tile server is set. */
(function () {
  "use strict";
  var box = document.getElementById("map");
  if (!box || !window.L) { return; }
  var COLOURS = {critical: "#b00020", urgent: "#c25e00", routine: "#2f6f3e"};
  var map = L.map(box, {zoomControl: true, keyboard: true, attributionControl: false});
  var tiles = box.getAttribute("data-tiles");
  if (tiles) { L.tileLayer(tiles, {maxZoom: 19}).addTo(map); }
  var bounds = L.latLngBounds([]);
  var summary = document.getElementById("map-summary");
  var counts = {cells: 0, dispatches: 0, swept: 0, notSwept: 0};

  function say() {
    summary.textContent = box.getAttribute("data-alert")
      ? counts.cells + " / " + counts.dispatches + " / " + counts.swept + " / " + counts.notSwept
      : counts.cells + " / " + counts.dispatches;
    summary.setAttribute("data-cells", counts.cells);
    summary.setAttribute("data-dispatches", counts.dispatches);
    summary.setAttribute("data-swept", counts.swept);
    summary.setAttribute("data-not-swept", counts.notSwept);
  }

  // Tooltips as text nodes: Leaflet would read a string as HTML.
  function tip(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span;
  }

  function get(url) {
    return fetch(url, {headers: {"X-Console-Script": "1"}, credentials: "same-origin",
                       cache: "no-store"}).then(function (resp) {
      if (resp.status === 401) {
        return resp.json().then(function (body) {
          window.location.assign(body.login + "?expired=1");
          return null;
        });
      }
      return resp.ok ? resp.json() : null;
    });
  }

  function fit() {
    if (bounds.isValid()) { map.fitBounds(bounds, {padding: [16, 16]}); }
  }

  get(box.getAttribute("data-source")).then(function (data) {
    if (!data) { return; }
    L.geoJSON(data, {
      filter: function (f) { return f.properties.kind === "cell"; },
      style: {color: "#4a6280", weight: 1, fillColor: "#c9d3df", fillOpacity: 0.45},
      onEachFeature: function (f, layer) {
        counts.cells += 1;
        layer.bindTooltip(tip(f.properties.name + " " + f.properties.code));
        bounds.extend(layer.getBounds());
      }
    }).addTo(map);
    L.geoJSON(data, {
      filter: function (f) { return f.properties.kind === "dispatch"; },
      pointToLayer: function (f, latlng) {
        counts.dispatches += 1;
        var marker = L.circleMarker(latlng, {radius: 9, weight: f.properties.overdue ? 4 : 2,
          color: f.properties.overdue ? "#000" : "#fff",
          fillColor: COLOURS[f.properties.priority] || "#5f6b7a", fillOpacity: 0.95});
        marker.bindTooltip(tip(f.properties.code + " · " + f.properties.category));
        marker.on("click", function () {
          window.location.assign("/console/dispatches/" + encodeURIComponent(f.properties.id));
        });
        return marker;
      }
    }).addTo(map);
    fit();
    say();
    var alertUrl = box.getAttribute("data-alert");
    if (!alertUrl) { return; }
    var alertLayer = L.layerGroup().addTo(map);
    var first = true;
    function drawAlert() {
      get(alertUrl).then(function (cover) {
        if (!cover) { return; }
        alertLayer.clearLayers();
        counts.swept = 0;
        counts.notSwept = 0;
        L.geoJSON(cover, {
          style: function (f) {
            var swept = f.properties.state === "swept";
            return {color: swept ? "#1e8e3e" : "#f0a500", weight: 2,
                    fillColor: swept ? "#1e8e3e" : "#f0a500", fillOpacity: 0.5};
          },
          onEachFeature: function (f, layer) {
            if (f.properties.state === "swept") { counts.swept += 1; } else { counts.notSwept += 1; }
            layer.bindTooltip(tip(f.properties.name + " · " + f.properties.texted));
            bounds.extend(layer.getBounds());
          }
        }).addTo(alertLayer);
        var centre = cover.properties.centre;
        (cover.properties.rings || []).forEach(function (ring) {
          L.circle([centre[1], centre[0]], {radius: ring.radius_m, color: "#b00020", weight: 2,
            dashArray: ring.sent ? null : "6 6", fill: false}).addTo(alertLayer);
        });
        L.circleMarker([centre[1], centre[0]], {radius: 6, color: "#b00020", fillOpacity: 1})
          .addTo(alertLayer);
        if (first) { fit(); first = false; }
        say();
      });
    }
    drawAlert();
    // Live: grid workers' OK replies turn cells green while the map is open.
    window.setInterval(drawAlert, 10000);
  });
}());

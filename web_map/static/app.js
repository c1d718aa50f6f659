/* Border roads tracker: map styles, popups, legend and basemap fallback for the pages.
 *
 * Folium builds the Leaflet map and its layers; the functions here (window.BR) style the
 * features and write their popups from the feature properties, in the page's language
 * (words handed over by BR.setup). Nothing here loads anything from outside the app.
 */
(function () {
  'use strict';

  // Leaflet.VectorGrid 1.3 still calls L.DomEvent.fakeStop, which Leaflet 1.8 removed.
  if (window.L && L.DomEvent && !L.DomEvent.fakeStop) {
    L.DomEvent.fakeStop = function (e) { L.DomEvent.stopPropagation(e); };
  }

  var STATUS_COLORS = {
    proposed: '#8e8e8e', surveyed: '#a1887f', funded: '#1e88e5', under_construction: '#fb8c00',
    completed: '#2e7d32', inaugurated: '#8e24aa', suspended: '#e53935', cancelled: '#37474f'
  };
  var ACCESS_COLORS = { none: '#d32f2f', footpath: '#f9a825', earth: '#8d6e63', concrete: '#2e7d32' };
  var COUNTRY_COLORS = { VNM: '#1565c0', CHN: '#ef6c00', LAO: '#ef6c00', KHM: '#ef6c00' };

  var W = {};          // words of the page's language
  var LANG = 'vi';
  var CFG = {};
  var counts = {};     // features drawn per kind
  var index = {};      // kind -> id -> Leaflet layer

  function word(key) { return W[key] !== undefined ? W[key] : key; }

  function esc(s) {
    return String(s === null || s === undefined ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function num(n, decimals) {
    if (n === null || n === undefined || n === '') return '–';
    var d = decimals || 0;
    var parts = Number(n).toFixed(d).split('.');
    var sep = LANG === 'vi' ? '.' : ',';
    var s = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, sep);
    return parts.length > 1 ? s + (LANG === 'vi' ? ',' : '.') + parts[1] : s;
  }

  // Money arrives as JSON numbers or strings (NUMERIC); whole đồng, shown without rounding.
  function money(v) {
    if (v === null || v === undefined) return '–';
    var s = String(v).split('.')[0];
    var neg = s.charAt(0) === '-';
    if (neg) s = s.slice(1);
    s = s.replace(/\B(?=(\d{3})+(?!\d))/g, LANG === 'vi' ? '.' : ',');
    return (neg ? '-' : '') + s + ' ' + word('currency');
  }

  function km(metres) { return num(Number(metres || 0) / 1000, 1) + ' km'; }

  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  function date(iso) {
    if (!iso) return '–';
    var p = String(iso).slice(0, 10).split('-');
    if (p.length !== 3) return esc(iso);
    if (LANG === 'vi') return p[2] + '/' + p[1] + '/' + p[0];
    return Number(p[2]) + ' ' + MONTHS[Number(p[1]) - 1] + ' ' + p[0];
  }

  function statusBadge(s) {
    return '<span class="br-badge" style="background:' + (STATUS_COLORS[s] || '#777') + '">' +
      esc(word('status_' + s)) + '</span>';
  }

  function row(label, value) {
    if (value === null || value === undefined || value === '') return '';
    return '<tr><th>' + esc(label) + '</th><td>' + value + '</td></tr>';
  }

  function photo(id) {
    if (!id) return '';
    return '<a href="/api/attachments/' + id + '/content" target="_blank" rel="noopener">' +
      '<img class="br-photo" loading="lazy" alt="' + esc(word('photo')) + '" src="/api/attachments/' +
      id + '/content"></a>';
  }

  function withLang(url) {
    return url + (url.indexOf('?') >= 0 ? '&' : '?') + 'lang=' + LANG;
  }

  // ----------------------------------------------------------------------------- popups

  // Compact pages send donors as [id, pledged, disbursed] and their names once (CFG.lookup).
  function donorObj(d) {
    if (!Array.isArray(d)) return d;
    var x = (CFG.lookup && CFG.lookup.donors && CFG.lookup.donors[d[0]]) || ['#' + d[0], null, null];
    return { name: x[0], name_en: x[1], groups: x[2] ? [x[2]] : [], pledged: d[1], disbursed: d[2] };
  }

  // A donor's or group's name in the page's language: from an object, or an id in the lookup.
  function donorName(d) {
    if (typeof d === 'number') {
      var x = CFG.lookup && CFG.lookup.donors && CFG.lookup.donors[d];
      d = x ? { name: x[0], name_en: x[1] } : { name: '#' + d };
    }
    return (LANG === 'en' && d.name_en) ? d.name_en : d.name;
  }

  function postName(p) {
    if (p.post) return p.post;
    var x = CFG.lookup && CFG.lookup.posts && CFG.lookup.posts[p.post_id];
    return x ? x[0] : '';
  }

  function donorsHtml(donors) {
    if (!donors || !donors.length) return '<p class="br-muted">' + esc(word('no_donors')) + '</p>';
    donors = donors.map(donorObj);
    // Members of a group (e.g. an emulation cluster) are listed under the group's name.
    var groups = [], byGroup = {};
    donors.forEach(function (d) {
      var g = (d.groups && d.groups.length) ? donorName(d.groups[0]) : '';
      if (!(g in byGroup)) { byGroup[g] = []; groups.push(g); }
      byGroup[g].push(d);
    });
    var total = { pledged: 0, disbursed: 0 };
    var h = '<table class="br-donors"><thead><tr><th>' + esc(word('donors')) + '</th><th>' +
      esc(word('pledged')) + '</th><th>' + esc(word('disbursed')) + '</th></tr></thead><tbody>';
    groups.forEach(function (g) {
      if (g) h += '<tr class="br-group"><td colspan="3">' + esc(g) + '</td></tr>';
      byGroup[g].forEach(function (d) {
        total.pledged += Number(d.pledged || 0);
        total.disbursed += Number(d.disbursed || 0);
        var name = donorName(d);
        h += '<tr class="br-donor' + (g ? ' br-member' : '') + '"><td>' + esc(name) + '</td><td class="br-num">' +
          money(d.pledged) + '</td><td class="br-num">' + money(d.disbursed) + '</td></tr>';
      });
    });
    if (donors.length > 1) {
      h += '<tr class="br-total"><td>' + esc(word('total')) + '</td><td class="br-num">' + money(total.pledged) +
        '</td><td class="br-num">' + money(total.disbursed) + '</td></tr>';
    }
    return h + '</tbody></table>';
  }

  function roadPopupHtml(p) {
    var place = [p.commune, p.district, p.province].filter(Boolean).map(esc).join(', ');
    var h = '<div class="br-popup br-popup-road" data-road-id="' + esc(p.id) + '">' +
      '<h3>' + esc(p.name) + '</h3><div class="br-muted">' + esc(p.code) + '</div>' +
      '<p>' + statusBadge(p.status) + ' <span class="br-progress" title="' + esc(word('progress')) + '">' +
      esc(word('progress')) + ': ' + num(p.progress) + '%</span></p><table class="br-facts">' +
      row(word('markers_served'), (p.markers || []).map(esc).join(', ')) +
      row(word('post'), esc(postName(p))) +
      row(word('province'), place) +
      row(word('length'), km(p.length_m)) +
      row(word('estimated_cost'), p.estimated_cost !== null && p.estimated_cost !== undefined ? money(p.estimated_cost) : '') +
      row(word('inaugurated_on'), p.inaugurated_on ? date(p.inaugurated_on) : '') +
      row(word('inauguration'), p.inauguration ? esc(p.inauguration) : '') +
      '</table>';
    if (p.donors !== undefined) h += donorsHtml(p.donors);
    h += photo(p.photo);
    if (CFG.page === 'post' && p.post_id === CFG.post_id) {
      h += '<p><button type="button" class="br-button" data-update-road="' + esc(p.id) + '">' +
        esc(word('update_status')) + '</button></p>';
    }
    return h + '</div>';
  }

  function markerPopupHtml(p) {
    return '<div class="br-popup"><h3>' + esc(word('marker')) + ' ' + esc(p.number) + '</h3><table class="br-facts">' +
      row(word('kind'), esc(word('marker_kind_' + p.kind))) +
      row(word('access'), '<span class="br-dot" style="background:' + (ACCESS_COLORS[p.access] || '#777') + '"></span>' +
          esc(word('access_' + p.access))) +
      row(word('province'), esc(p.province || ((CFG.lookup && CFG.lookup.posts && CFG.lookup.posts[p.post_id]) || [])[1])) +
      row(word('post'), esc(postName(p))) + '</table></div>';
  }

  function postPopupHtml(p, id) {
    return '<div class="br-popup"><h3>' + esc(p.name) + '</h3><div class="br-muted">' + esc(p.code) + '</div>' +
      '<table class="br-facts">' +
      row(word('province'), [p.district, p.province].filter(Boolean).map(esc).join(', ')) +
      row(word('roads'), p.roads !== undefined ? num(p.roads) : '') +
      row(word('markers'), p.markers !== undefined ? num(p.markers) : '') + '</table>' +
      (id && CFG.page !== 'post' ? '<p><a href="' + withLang('/post?post_id=' + id) + '">' +
        esc(word('update_status')) + ' →</a></p>' : '') + '</div>';
  }

  function inaugurationPopupHtml(p) {
    return '<div class="br-popup br-popup-inauguration"><h3>' + esc(p.title) + '</h3><table class="br-facts">' +
      row(word('date'), date(p.held_on)) + row(word('place'), esc(p.place)) +
      row(word('officials'), esc(p.officials)) + '</table>' +
      '<h4>' + esc(word('roads_inaugurated')) + '</h4><ul>' +
      (p.roads || []).map(function (r) { return '<li>' + esc(r) + '</li>'; }).join('') + '</ul>' +
      ((p.donors || []).length ? '<h4>' + esc(word('donors_credited')) + '</h4><ul>' +
        p.donors.map(function (d) { return '<li>' + esc(d) + '</li>'; }).join('') + '</ul>' : '') +
      photo(p.photo) + '</div>';
  }

  function villagePopupHtml(p) {
    return '<div class="br-popup"><h3>' + esc(p.name) + '</h3><table class="br-facts">' +
      row(word('province'), [p.admin2, p.admin1, p.country].filter(Boolean).map(esc).join(', ')) +
      '</table></div>';
  }

  function pairPopupHtml(p) {
    var last = p.last_meeting_on ? date(p.last_meeting_on) + (p.last_meeting_quarter ? ' (' + esc(p.last_meeting_quarter) + ')' : '')
      : esc(word('never_met'));
    return '<div class="br-popup br-popup-pair"><h3>' + esc(p.vn_village) + ' – ' + esc(p.foreign_village) + '</h3>' +
      '<p>' + (p.overdue ? '<span class="br-badge br-overdue">' + esc(word('overdue')) + '</span>'
        : '<span class="br-badge br-ontime">' + esc(word('on_time')) + '</span>') + '</p>' +
      '<table class="br-facts">' +
      row(word('vn_side'), esc(p.vn_village) + ', ' + esc([p.vn_district, p.vn_province].filter(Boolean).join(', '))) +
      row(word('other_side'), esc(p.foreign_village) + ', ' + esc([p.foreign_admin1, p.foreign_country].filter(Boolean).join(', '))) +
      row(word('post'), esc(p.post)) +
      row(word('twinned_on'), p.twinned_on ? date(p.twinned_on) : '') +
      row(word('meetings'), num(p.meetings)) +
      row(word('last_meeting'), last) + '</table></div>';
  }

  var POPUP = { maxWidth: 340, minWidth: 220, maxHeight: 360, autoPanPadding: [12, 12] };

  // ------------------------------------------------------------------- inline layers

  function track(kind, feature, layer) {
    counts[kind] = (counts[kind] || 0) + 1;
    (index[kind] = index[kind] || {})[feature.id] = layer;
  }

  var style = {
    road: function (f) {
      var s = f.properties.status;
      return {
        color: STATUS_COLORS[s] || '#555', weight: 5, opacity: 0.95, lineCap: 'round',
        dashArray: s === 'cancelled' ? '4 7' : null, className: 'br-road br-road-' + s
      };
    },
    pair: function (f) {
      var o = f.properties.overdue;
      return { color: o ? '#d32f2f' : '#2e7d32', weight: 4, opacity: 0.9, dashArray: o ? '8 6' : null,
        className: 'br-pair' + (o ? ' br-pair-overdue' : '') };
    }
  };

  var point = {
    marker: function (f, latlng) {
      return L.circleMarker(latlng, { radius: 5, color: '#263238', weight: 1, fillOpacity: 0.9,
        fillColor: ACCESS_COLORS[f.properties.access] || '#777', className: 'br-marker' });
    },
    access: function (f, latlng) {
      return L.circleMarker(latlng, { radius: 4, color: '#263238', weight: 0.6, fillOpacity: 0.9,
        fillColor: ACCESS_COLORS[f.properties.access] || '#777', className: 'br-marker br-access-' + f.properties.access });
    },
    post: function (f, latlng) {
      return L.marker(latlng, { icon: L.divIcon({ className: 'br-post-icon', html: '<span>⚑</span>',
        iconSize: [22, 22], iconAnchor: [11, 11] }), title: f.properties.name });
    },
    inauguration: function (f, latlng) {
      return L.marker(latlng, { icon: L.divIcon({ className: 'br-inaug-icon', html: '<span>★</span>',
        iconSize: [20, 20], iconAnchor: [10, 10] }), title: f.properties.title, zIndexOffset: 500 });
    },
    village: function (f, latlng) {
      return L.circleMarker(latlng, { radius: 5, weight: 1, color: '#fff', fillOpacity: 0.95,
        fillColor: COUNTRY_COLORS[f.properties.country] || '#777', className: 'br-village' });
    }
  };

  function withId(f) { var p = f.properties || {}; p.id = f.id; return p; }

  var on = {
    road: function (f, layer) {
      track('roads', f, layer);
      layer.bindPopup(function () { return roadPopupHtml(withId(f)); }, POPUP);
    },
    marker: function (f, layer) {
      track('markers', f, layer);
      layer.bindPopup(function () { return markerPopupHtml(f.properties); }, POPUP);
    },
    access: function (f, layer) { on.marker(f, layer); },
    post: function (f, layer) {
      track('posts', f, layer);
      layer.bindPopup(function () { return postPopupHtml(f.properties, f.id); }, POPUP);
    },
    inauguration: function (f, layer) {
      track('inaugurations', f, layer);
      layer.bindPopup(function () { return inaugurationPopupHtml(f.properties); }, POPUP);
    },
    village: function (f, layer) {
      track('villages', f, layer);
      layer.bindPopup(function () { return villagePopupHtml(f.properties); }, POPUP);
    },
    pair: function (f, layer) {
      track('pairs', f, layer);
      layer.bindPopup(function () { return pairPopupHtml(f.properties); }, POPUP);
    }
  };

  // ---------------------------------------------------------------------- tile layers

  function pointRadius(p, base) {
    var n = Number(p.count || 1);
    return n > 1 ? Math.min(base + 1.4 * Math.log(n) / Math.LN2, 13) : base;
  }

  // Below a layer's aggregation zoom its features are grid cells (points with a count).
  function cell(p, color) {
    return { radius: pointRadius(p, 3), fill: true, fillOpacity: 0.9, weight: 1, color: '#fff', fillColor: color };
  }

  var tileStyles = {
    roads: function (p) {
      var color = STATUS_COLORS[p.status] || '#555';
      if (p.count !== undefined) return cell(p, color);
      return { color: color, weight: 4, opacity: 0.95, dashArray: p.status === 'cancelled' ? '4 7' : null };
    },
    'village-pairs': function (p) {
      var color = p.overdue ? '#d32f2f' : '#2e7d32';
      if (p.count !== undefined) return cell(p, color);
      return { color: color, weight: 4, opacity: 0.9, dashArray: p.overdue ? '8 6' : null };
    },
    markers: function (p) {
      return { radius: pointRadius(p, 4), fill: true, fillOpacity: p.count > 1 ? 0.55 : 0.85, weight: 1,
        color: '#263238', fillColor: ACCESS_COLORS[p.access] || '#777' };
    },
    posts: function (p) {
      return { radius: pointRadius(p, 5), fill: true, fillOpacity: 0.9, weight: 1, color: '#fff', fillColor: '#2e3d9b' };
    },
    villages: function (p) {
      return { radius: pointRadius(p, 5), fill: true, fillOpacity: 0.9, weight: 1, color: '#fff',
        fillColor: COUNTRY_COLORS[p.country] || '#777' };
    }
  };

  function tileOptions(layer) {
    var styles = {};
    styles[layer] = tileStyles[layer];
    return {
      vectorTileLayerStyles: styles, interactive: true, maxNativeZoom: 16, maxZoom: 19,
      rendererFactory: L.svg.tile,
      getFeatureId: function (f) { return f.id; }
    };
  }

  function onTileClick(map, layerName, e) {
    var p = e.layer.properties || {};
    var id = e.layer.feature && e.layer.feature.id !== undefined ? e.layer.feature.id : p.id;
    if (Number(p.count || 1) > 1) {  // an aggregate: come closer
      map.setView(e.latlng, Math.min(map.getZoom() + 2, 16));
      return;
    }
    var popup = L.popup(POPUP).setLatLng(e.latlng);
    if (layerName === 'roads' || layerName === 'village-pairs') {
      popup.setContent('<div class="br-popup">' + esc(word('loading')) + '</div>').openOn(map);
      fetch('/map/' + layerName + '/' + id + '.json').then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.json();
      }).then(function (props) {
        popup.setContent(layerName === 'roads' ? roadPopupHtml(props) : pairPopupHtml(props));
      }).catch(function () { popup.setContent('<div class="br-popup">' + esc(word('load_failed')) + '</div>'); });
      return;
    }
    var html = layerName === 'markers' ? markerPopupHtml(p) : layerName === 'posts' ? postPopupHtml(p, id)
      : villagePopupHtml(p);
    popup.setContent(html).openOn(map);
  }

  // --------------------------------------------------------------------------- start

  function legendControl(map, html) {
    var ctl = L.control({ position: 'bottomleft' });
    ctl.onAdd = function () {
      var div = L.DomUtil.create('details', 'br-legend-control leaflet-bar');
      if (window.innerWidth > 700) div.setAttribute('open', '');
      div.innerHTML = '<summary>' + esc(word('legend')) + '</summary>' + html;
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    ctl.addTo(map);
  }

  function watchBasemap(map, basemap) {
    var loaded = 0, failed = 0, notice = null;
    function show() {
      if (notice || loaded) return;
      notice = L.control({ position: 'topright' });
      notice.onAdd = function () {
        var d = L.DomUtil.create('div', 'br-notice');
        d.setAttribute('role', 'status');
        d.textContent = word('basemap_offline');
        return d;
      };
      notice.addTo(map);
      document.body.classList.add('br-basemap-offline');
    }
    basemap.on('tileerror', function () { failed += 1; show(); });
    basemap.on('tileload', function () {
      loaded += 1;
      if (notice) { map.removeControl(notice); notice = null; document.body.classList.remove('br-basemap-offline'); }
    });
    BR.basemapState = function () { return { loaded: loaded, failed: failed }; };
  }

  function ready() {
    if (BR.ready) return;
    BR.ready = true;
    BR.readyAt = performance.now();
    if (performance.mark) performance.mark('br-ready');
    document.documentElement.setAttribute('data-map-ready', '1');
  }

  function start(map, basemap, layers, tileLayers, legendHtml) {
    BR.map = map;
    BR.layers = layers;
    BR.tileLayers = tileLayers;
    legendControl(map, legendHtml);
    watchBasemap(map, basemap);
    // The generalised outlines (≈1 km) mislead close up: fade them there.
    var outlines = map.getPane('outlines');
    function fade() {
      if (outlines) outlines.style.opacity = map.getZoom() >= 10 ? '0.3' : '1';
      map.getContainer().classList.toggle('br-z-low', map.getZoom() < 8);
    }
    map.on('zoomend', fade);
    fade();
    var pending = 0;
    Object.keys(tileLayers).forEach(function (name) {
      var tl = tileLayers[name];
      tl.on('click', function (e) { onTileClick(map, name, e); });
      if (map.hasLayer(tl)) {
        pending += 1;
        tl.once('load', function () { pending -= 1; if (!pending) ready(); });
      }
    });
    map.on('popupopen', function (e) {
      var btn = e.popup.getElement() && e.popup.getElement().querySelector('[data-update-road]');
      if (btn && BR.onUpdateRoad) {
        btn.addEventListener('click', function () { BR.onUpdateRoad(Number(btn.getAttribute('data-update-road'))); });
      }
    });
    if (!pending) (window.requestAnimationFrame || setTimeout)(ready);
    var mapEl = map.getContainer();
    mapEl.setAttribute('aria-label', word('map_label'));
    // Panels may change the map's size (phone layout, toggled panels).
    window.addEventListener('resize', function () { map.invalidateSize(); });
  }

  // Rows [lon, lat, id, ...columns] -> the same layers and popups as GeoJSON points.
  function addPoints(group, kind, columns, rows) {
    var make = point[kind], bind = on[kind];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], props = {};
      for (var c = 0; c < columns.length; c++) props[columns[c]] = r[c + 3];
      var f = { type: 'Feature', id: r[2], properties: props };
      var layer = make(f, L.latLng(r[1], r[0]));
      layer.feature = f;
      bind(f, layer);
      group.addLayer(layer);
    }
    return group;
  }

  // Marker clusters in a neutral colour: the map's colours belong to road statuses.
  function clusterIcon(cluster) {
    var n = cluster.getChildCount();
    var size = n < 10 ? 26 : n < 100 ? 32 : 40;
    return L.divIcon({ html: '<span>' + n + '</span>', className: 'br-cluster', iconSize: [size, size] });
  }

  function stats() {
    var out = {};
    Object.keys(counts).forEach(function (k) { out[k] = counts[k]; });
    return out;
  }

  function focus(kind, id) {
    var layer = index[kind] && index[kind][id];
    if (!layer || !BR.map) return false;
    if (layer.getBounds) BR.map.fitBounds(layer.getBounds(), { maxZoom: 15, padding: [30, 30] });
    else BR.map.setView(layer.getLatLng(), 15);
    layer.openPopup();
    return true;
  }

  var BR = window.BR = {
    setup: function (cfg) { CFG = cfg || {}; W = CFG.words || {}; LANG = CFG.lang || 'vi'; },
    outlineStyle: function (f) {
      var vn = f.properties.iso3 === 'VNM';
      return { color: '#9e9e9e', weight: 1, fillColor: vn ? '#fbf8ef' : '#e6e6e6', fillOpacity: 1 };
    },
    borderStyle: function () { return { color: '#c62828', weight: 2, opacity: 0.8, dashArray: '10 5 2 5' }; },
    style: style, point: point, on: on, tileOptions: tileOptions, start: start, stats: stats, addPoints: addPoints,
    clusterIcon: clusterIcon,
    index: index, focus: focus, ready: false,
    fmt: { num: num, money: money, date: date, km: km, esc: esc, word: word, statusBadge: statusBadge },
    colors: { status: STATUS_COLORS, access: ACCESS_COLORS },
    roadPopupHtml: roadPopupHtml
  };
}());

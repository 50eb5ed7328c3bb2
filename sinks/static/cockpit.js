// citywatch leader cockpit: one situation map and thematic maps over the same outlines.
// Vanilla JS, nothing loaded from elsewhere (no CDN, no tiles, no web fonts). Every string
// from the server goes into the page as text or as an SVG attribute value, never as HTML.
"use strict";

(() => {
  const LEVELS = ["red", "orange", "yellow", "blue"];
  const LEVEL_ZH = { red: "红色", orange: "橙色", yellow: "黄色", blue: "蓝色" };
  const LEVEL_COLOUR = { red: "#d7263d", orange: "#f46036", yellow: "#e8c547", blue: "#2e86de" };
  const SOURCE_ZH = { air: "空气", gps: "车辆GPS", video: "视频", power: "电力", hotline: "热线", order: "指令", water: "水质" };
  const THEME_ZH = { overview: "总览", air: "空气质量", hazmat: "危化车辆", worksites: "工地复工", hotline: "12345热线", orders: "工单" };
  const ROLE_ZH = { duty_officer: "值班员", handler: "部门处置员", leader: "领导", admin: "管理员" };
  // AQI categories (HJ 633-2012): upper bound, colour, name.
  const AQI = [[50, "#00e400", "优"], [100, "#ffff00", "良"], [150, "#ff7e00", "轻度污染"],
    [200, "#ff0000", "中度污染"], [300, "#99004c", "重度污染"], [Infinity, "#7e0023", "严重污染"]];
  const RAMP = ["#1d3a52", "#2c6a8f", "#e0b34a", "#f07c2e", "#d7263d"];  // low -> high counts
  const POLL_MS = 2000;
  const MIN_K = 1, MAX_K = 80, GRID_K = 5;

  const $ = (id) => document.getElementById(id);
  const state = {
    theme: "overview", picture: null, ws: null, user: null, backoff: 500, req: 0,
    outlines: { district: [], town: [] }, grids: null, gridsWanted: false,
    names: new Map(), config: null,
    view: { k: 1, x: 0, y: 0 }, base: null, size: { w: 800, h: 600 },
  };
  window.citywatchCockpit = state;  // for tests and debugging

  // -- helpers ----------------------------------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function titled(node, text) { node.appendChild(svg("title")).textContent = text; return node; }
  function fmtTime(ms) {
    if (!ms) return "–";
    const d = new Date(ms), p = (n) => String(n).padStart(2, "0");
    return `${d.getMonth() + 1}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  function aqiClass(v) { return AQI.find(([hi]) => v <= hi); }
  function townName(id) { return state.names.get("town:" + id) || id; }
  function centreName(c) {
    if (c === "city") return "市中心";
    const n = state.names.get(c);
    if (n) return c.startsWith("county:") ? n + "中心" : n;
    return c.replace(/^county:/, "").replace(/^town:/, "");
  }

  // -- projection and view ------------------------------------------------------------------
  // Equirectangular scaled by cos(latitude): fine over a city. Base: fits the districts into
  // the map; the view (k, x, y) pans and zooms on top of it.
  function fitBase() {
    const box = $("mapbox");
    state.size = { w: box.clientWidth || 800, h: box.clientHeight || 600 };
    $("map").setAttribute("viewBox", `0 0 ${state.size.w} ${state.size.h}`);
    const pts = [];
    for (const f of state.outlines.district) for (const poly of f.polygons) for (const p of poly[0]) pts.push(p);
    let lon0, lon1, lat0, lat1;
    if (pts.length) {
      lon0 = Math.min(...pts.map((p) => p[0])); lon1 = Math.max(...pts.map((p) => p[0]));
      lat0 = Math.min(...pts.map((p) => p[1])); lat1 = Math.max(...pts.map((p) => p[1]));
    } else {
      const r = (state.config && state.config.region) || { lat_min: 31.6, lat_max: 32.7, lon_min: 120.2, lon_max: 121.9 };
      lon0 = r.lon_min; lon1 = r.lon_max; lat0 = r.lat_min; lat1 = r.lat_max;
    }
    const kx = Math.cos(((lat0 + lat1) / 2) * Math.PI / 180);
    const pad = 24, { w, h } = state.size;
    const s = Math.min((w - 2 * pad) / ((lon1 - lon0) * kx || 1), (h - 2 * pad) / ((lat1 - lat0) || 1));
    const ox = (w - (lon1 - lon0) * kx * s) / 2, oy = (h - (lat1 - lat0) * s) / 2;
    state.base = { s, kx, lon0, lat1, ox, oy };
  }
  function proj(lon, lat) {
    const b = state.base;
    return [b.ox + (lon - b.lon0) * b.kx * b.s, b.oy + (b.lat1 - lat) * b.s];
  }
  function pathOf(polygons) {
    let d = "";
    for (const poly of polygons) {
      for (const ring of poly) {
        ring.forEach((p, i) => { const [x, y] = proj(p[0], p[1]); d += (i ? "L" : "M") + x.toFixed(1) + "," + y.toFixed(1); });
        d += "Z";
      }
    }
    return d;
  }
  function centroid(polygons) {
    let best = null, area = -1;
    for (const poly of polygons) {  // the largest polygon's ring average: good enough for labels
      const ring = poly[0];
      const xs = ring.map((p) => p[0]), ys = ring.map((p) => p[1]);
      const a = (Math.max(...xs) - Math.min(...xs)) * (Math.max(...ys) - Math.min(...ys));
      if (a > area) { area = a; best = [xs.reduce((s, v) => s + v, 0) / xs.length, ys.reduce((s, v) => s + v, 0) / ys.length]; }
    }
    return best;
  }

  function applyView() {
    const v = state.view;
    $("world").setAttribute("transform", `translate(${v.x.toFixed(1)},${v.y.toFixed(1)}) scale(${v.k})`);
    // Markers and labels keep their on-screen size whatever the zoom.
    for (const c of $("marks").children) {
      const r = Number(c.dataset.r);
      if (c.tagName === "circle") c.setAttribute("r", (r / v.k).toFixed(3));
      else { const x = Number(c.dataset.x), y = Number(c.dataset.y), s = r / v.k;
        c.setAttribute("x", (x - s).toFixed(3)); c.setAttribute("y", (y - s).toFixed(3));
        c.setAttribute("width", (2 * s).toFixed(3)); c.setAttribute("height", (2 * s).toFixed(3)); }
    }
    for (const t of $("labels").children) {
      t.setAttribute("font-size", (Number(t.dataset.size) / v.k).toFixed(3));
      t.setAttribute("y", (Number(t.dataset.y) + Number(t.dataset.dy || 0) / v.k).toFixed(3));
    }
    $("labels").style.display = "";
    for (const t of $("labels").querySelectorAll("text.town")) t.style.display = v.k >= 3 ? "" : "none";
    $("grids").style.display = v.k >= GRID_K ? "" : "none";
    if (v.k >= GRID_K) loadGrids();
    renderScale();
  }
  function zoomAt(factor, sx, sy) {
    const v = state.view;
    const k = Math.min(MAX_K, Math.max(MIN_K, v.k * factor));
    const f = k / v.k;
    v.x = sx - (sx - v.x) * f; v.y = sy - (sy - v.y) * f; v.k = k;
    applyView();
  }
  function resetView() { state.view = { k: 1, x: 0, y: 0 }; applyView(); }
  function screenPoint(ev) {
    const r = $("map").getBoundingClientRect();
    return [(ev.clientX - r.left) * state.size.w / r.width, (ev.clientY - r.top) * state.size.h / r.height];
  }

  function renderScale() {
    if (!state.base) return;
    const mPerPx = 111320 / (state.base.s * state.view.k);
    const target = 110 * mPerPx;
    const pow = Math.pow(10, Math.floor(Math.log10(target)));
    const nice = [1, 2, 5, 10].map((m) => m * pow).filter((m) => m <= target * 1.4).pop() || pow;
    $("scale-bar").style.width = (nice / mPerPx).toFixed(0) + "px";
    $("scale-text").textContent = nice >= 1000 ? nice / 1000 + " 公里" : nice + " 米";
  }

  // -- outlines ------------------------------------------------------------------------------
  function parseOutlines(geo) {
    const out = [];
    for (const f of (geo && geo.features) || []) {
      const g = f.geometry || {}, p = f.properties || {};
      const polygons = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
      if (polygons.length) out.push({ id: String(p.id || p.name || ""), name: String(p.name || p.id || ""), district: String(p.district || ""), polygons });
    }
    return out;
  }
  async function loadGrids() {
    if (state.gridsWanted) return;
    state.gridsWanted = true;
    try {
      const grids = parseOutlines(await (await fetch("/outlines/grid.geojson")).json());
      let d = "";
      for (const g of grids) d += pathOf(g.polygons);
      state.grids = grids.length;
      $("grids").setAttribute("d", d);
    } catch (e) { state.grids = 0; }
  }
  function drawOutlines() {
    fitBase();
    const fills = $("fills"), edges = $("edges");
    clear(fills); clear(edges);
    for (const t of state.outlines.town) {
      const p = titled(svg("path", { d: pathOf(t.polygons), class: "town" }), t.name);
      p.dataset.id = t.id;
      fills.appendChild(p);
    }
    for (const d of state.outlines.district) {
      const p = titled(svg("path", { d: pathOf(d.polygons), class: "district" }), d.name);
      p.dataset.id = d.id;
      if (!state.outlines.town.length) fills.appendChild(p);
      edges.appendChild(svg("path", { d: pathOf(d.polygons) }));
    }
    if (state.grids) { state.gridsWanted = false; loadGrids(); }
    renderTheme();
  }

  // -- themes ---------------------------------------------------------------------------------
  function fillBy(level, value, breaks) {
    // level: "town" or "district"; value(id) -> number | null; breaks: ascending upper bounds.
    const sel = level === "town" ? "#fills path.town" : "#fills path.district";
    for (const p of document.querySelectorAll("#fills path")) p.style.fill = "";
    for (const p of document.querySelectorAll(sel)) {
      const v = value(p.dataset.id);
      if (v === null || v === undefined || v <= 0) continue;
      const i = breaks.findIndex((b) => v <= b);
      p.style.fill = RAMP[i === -1 ? RAMP.length - 1 : Math.min(i, RAMP.length - 1)];
    }
  }
  function breaksFor(values) {
    const max = Math.max(0, ...values);
    if (max <= 0) return [1, 2, 3, 4, 5];
    const step = Math.max(1, Math.ceil(max / 5));
    return [1, 2, 3, 4, 5].map((i) => i * step);
  }
  function mark(item, opts) {
    if (typeof item.lat !== "number" || typeof item.lon !== "number") return;
    const [x, y] = proj(item.lon, item.lat);
    const r = opts.r || 5;
    let node;
    if (opts.square) {
      node = svg("rect", { fill: opts.colour });
      node.dataset.x = x; node.dataset.y = y;
    } else {
      node = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), fill: opts.colour });
    }
    node.dataset.r = r;
    if (item.id) node.dataset.id = item.id;
    titled(node, opts.title || "");
    $("marks").appendChild(node);
  }
  function label(lon, lat, text, size, cls, dy) {
    const [x, y] = proj(lon, lat);
    const t = svg("text", { x: x.toFixed(1), y: y.toFixed(1) });
    if (cls) t.setAttribute("class", cls);
    t.dataset.y = y; t.dataset.size = size; t.dataset.dy = dy || 0;
    t.textContent = text;
    $("labels").appendChild(t);
  }
  function legend(title, rows) {
    const box = $("legend");
    clear(box);
    box.appendChild(el("h4", null, title));
    for (const [colour, text, dot] of rows) {
      const row = el("div");
      const sw = el("i", dot ? "dot" : null);
      sw.style.background = colour;
      row.appendChild(sw);
      row.appendChild(el("span", null, text));
      box.appendChild(row);
    }
  }
  function rampLegend(title, breaks) {
    const rows = [["#1a2734", "0"]];
    let lo = 1;
    breaks.forEach((b, i) => { rows.push([RAMP[i], lo === b ? String(b) : `${lo}–${b}`]); lo = b + 1; });
    legend(title, rows);
  }
  function tiles(list) {
    const box = $("tiles");
    clear(box);
    for (const [value, text, cls] of list) {
      const t = el("div", "tile" + (cls ? " " + cls : ""));
      t.appendChild(el("b", null, value === null || value === undefined ? "–" : value));
      t.appendChild(el("span", null, text));
      box.appendChild(t);
    }
  }
  function table(head, rows, numeric) {
    const t = el("table"), tr = el("tr");
    head.forEach((h, i) => tr.appendChild(el("th", numeric && i > 0 ? "n" : null, h)));
    t.appendChild(el("thead")).appendChild(tr);
    const body = t.appendChild(el("tbody"));
    for (const row of rows) {
      const r = el("tr");
      row.forEach((v, i) => r.appendChild(el("td", numeric && i > 0 ? "n" : null, v)));
      body.appendChild(r);
    }
    return t;
  }
  function section(title, node) {
    const body = $("side-body");
    body.appendChild(el("h3", null, title));
    body.appendChild(node);
  }
  function note(text) { $("empty-note").textContent = text || ""; $("empty-note").hidden = !text; }
  function alertsWhere(test) { return ((state.picture && state.picture.alerts) || []).filter(test); }

  const THEMES = {
    overview(p) {
      const t = p.totals;
      tiles([[t.firing.red, "红色预警", "red"], [t.firing.orange, "橙色预警", "orange"],
        [t.firing.yellow, "黄色预警", "yellow"], [t.firing.blue, "蓝色预警", "blue"],
        [t.open, "未办结工单"], [t.overdue, "超时工单", t.overdue ? "red" : ""],
        [t.records_per_s, "每秒接入记录"], [t.lag_ms === null || t.lag_ms === undefined ? null : (t.lag_ms / 1000).toFixed(1) + "s", "处理延迟"]]);
      const score = (d) => { const r = p.districts[d]; if (!r) return null; const f = r.firing;
        return f.red ? 4 : f.orange ? 3 : f.yellow ? 2 : f.blue ? 1 : 0; };
      for (const path of document.querySelectorAll("#fills path")) path.style.fill = "";
      for (const path of document.querySelectorAll("#fills path.district")) {
        const s = score(path.dataset.id);
        if (s) path.style.fill = LEVEL_COLOUR[LEVELS[4 - s]] + "55";
      }
      if (state.outlines.town.length) {  // district fills sit under the towns: tint the towns
        const districtOf = new Map(state.outlines.town.map((x) => [x.id, x.district]));
        for (const path of document.querySelectorAll("#fills path.town")) {
          const s = score(districtOf.get(path.dataset.id));
          if (s) path.style.fill = LEVEL_COLOUR[LEVELS[4 - s]] + "44";
        }
      }
      for (const a of [...p.alerts].reverse()) {
        mark(a, { colour: LEVEL_COLOUR[a.level] || "#999", r: 2.5 + (4 - LEVELS.indexOf(a.level)), title: `${LEVEL_ZH[a.level] || ""} ${a.title || a.rule}` });
      }
      for (const d of state.outlines.district) {
        const r = p.districts[d.id] || { firing: {}, open: 0, overdue: 0 };
        const c = centroid(d.polygons);
        if (!c) continue;
        const f = r.firing || {};
        label(c[0], c[1], d.name, 13, null, -8);
        label(c[0], c[1], `红${f.red || 0} 橙${f.orange || 0} 工单${r.open}${r.overdue ? " 超时" + r.overdue : ""}`, 11, "sub", 8);
      }
      legend("区县底色：最高预警级别；圆点：持续中的预警", LEVELS.map((l) => [LEVEL_COLOUR[l], LEVEL_ZH[l] + "预警", true]));
      const rates = p.rates || {};
      section("各来源每秒接入记录", table(["来源", "条/秒"], Object.entries(rates).map(([k, v]) => [SOURCE_ZH[k] || k, v.toFixed(1)]), true));
      if (!p.rates) $("side-body").lastChild.appendChild(el("p", null, "采样中（2 秒后显示速率）"));
      const rows = Object.entries(p.districts).sort((x, y) => y[1].open - x[1].open)
        .map(([d, r]) => [d, r.firing.red, r.firing.orange, r.firing.yellow, r.firing.blue, r.open, r.overdue]);
      section("各区县", table(["区县", "红", "橙", "黄", "蓝", "工单", "超时"], rows, true));
      if (!p.alerts.length) note("当前没有持续中的预警");
    },
    air(p) {
      const st = p.air.stations;
      if (p.air.source === "observations" && st.length) {
        for (const s of st) {
          const c = aqiClass(s.aqi);
          mark(s, { colour: c[1], r: 6, title: `${s.id} AQI ${s.aqi}（${c[2]}）${s.primary ? " 首要污染物 " + s.primary : ""}` });
        }
        legend("站点小时 AQI（HJ 633）", AQI.map(([hi, colour, name], i) => [colour, `${name} ${i ? AQI[i - 1][0] + 1 : 0}${hi === Infinity ? "+" : "–" + hi}`, true]));
        const worst = [...st].sort((a, b) => b.aqi - a.aqi).slice(0, 12);
        tiles([[st.length, "站点"], [Math.max(...st.map((s) => s.aqi)), "最高 AQI", "orange"],
          [st.filter((s) => s.aqi > 100).length, "超标站点", "red"], [fmtTime(Math.max(...st.map((s) => s.ts || 0))), "数据小时"]]);
        section("AQI 最高的站点", table(["站点", "区县", "AQI", "类别"], worst.map((s) => [s.id, s.district || "–", s.aqi, aqiClass(s.aqi)[2]]), true));
      } else {
        const list = alertsWhere((a) => (a.rule || "").startsWith("air."));
        for (const a of list) mark(a, { colour: LEVEL_COLOUR[a.level], r: 6, title: a.title || a.rule });
        legend("空气预警（暂无小时 AQI 数据）", LEVELS.map((l) => [LEVEL_COLOUR[l], LEVEL_ZH[l], true]));
        tiles([[list.length, "空气预警"], [list.filter((a) => a.level === "red").length, "红色", "red"]]);
        section("空气预警", table(["标题", "区县", "级别"], list.slice(0, 30).map((a) => [a.title || a.rule, a.district || "–", LEVEL_ZH[a.level]])));
        note("未收到站点小时 AQI（cw:obs:air.hourly）：显示空气预警");
      }
    },
    hazmat(p) {
      const dwell = alertsWhere((a) => a.rule === "vehicle.dwell");
      const shops = alertsWhere((a) => a.rule === "vehicle.workshop");
      for (const a of dwell) mark(a, { colour: LEVEL_COLOUR[a.level], r: 6, title: a.title || "危化车辆异常停留" });
      for (const a of shops) mark(a, { colour: "#b05cff", r: 6, square: true, title: a.title || "疑似非法作坊" });
      legend("危化车辆", [["#d7263d", "异常停留（颜色=级别）", true], ["#b05cff", "疑似非法作坊（候选点）"]]);
      tiles([[dwell.length, "异常停留", "orange"], [shops.length, "作坊候选", "red"]]);
      section("异常停留", table(["车辆/标题", "区县", "开始"], dwell.slice(0, 30).map((a) => [a.title || (a.subject && a.subject.id), a.district || "–", fmtTime(a.first_ts)])));
      section("疑似非法作坊", table(["候选点", "区县", "开始"], shops.slice(0, 30).map((a) => [a.title || (a.subject && a.subject.id), a.district || "–", fmtTime(a.first_ts)])));
      if (!dwell.length && !shops.length) note("当前没有危化车辆预警");
    },
    worksites(p) {
      const list = alertsWhere((a) => a.rule === "worksite.resumption");
      for (const a of list) mark(a, { colour: LEVEL_COLOUR[a.level], r: 6, title: a.title || "违规复工" });
      legend("停工工地违规复工", LEVELS.map((l) => [LEVEL_COLOUR[l], LEVEL_ZH[l], true]));
      const byDistrict = {};
      for (const a of list) byDistrict[a.district || "–"] = (byDistrict[a.district || "–"] || 0) + 1;
      tiles([[list.length, "违规复工工地", "red"], [Object.keys(byDistrict).length, "涉及区县"]]);
      section("各区县", table(["区县", "工地"], Object.entries(byDistrict).sort((a, b) => b[1] - a[1]), true));
      section("工地", table(["工地/标题", "街镇", "开始"], list.slice(0, 30).map((a) => [a.title || (a.subject && a.subject.id), a.town ? townName(a.town) : "–", fmtTime(a.first_ts)])));
      if (!list.length) note("当前没有违规复工预警");
    },
    hotline(p) {
      const byTown = Object.fromEntries(Object.entries(p.towns).map(([k, v]) => [k, v.tickets || 0]));
      const byDistrict = Object.fromEntries(Object.entries(p.districts).map(([k, v]) => [k, v.tickets || 0]));
      const towns = state.outlines.town.length > 0;
      const values = towns ? byTown : byDistrict;
      const breaks = breaksFor(Object.values(values));
      fillBy(towns ? "town" : "district", (id) => values[id] || 0, breaks);
      rampLegend(towns ? "近一天各街镇工单数" : "近一天各区县工单数", breaks);
      const h = p.hotline;
      tiles([[h.tickets, "近一天工单"], [fmtTime(h.until_ts), "截至（工单时间）"]]);
      const top = Object.entries(byTown).filter(([k, v]) => k && v > 0).sort((a, b) => b[1] - a[1]).slice(0, 15);
      section("工单最多的街镇", table(["街镇", "工单"], top.map(([k, v]) => [townName(k), v]), true));
      section("各区县", table(["区县", "工单"], Object.entries(byDistrict).filter(([k, v]) => k && v > 0).sort((a, b) => b[1] - a[1]), true));
      if (!h.tickets) note("近一天没有热线工单");
    },
    orders(p) {
      const c = p.centres;
      const towns = state.outlines.town.length > 0;
      const value = (id) => { const r = c[(towns ? "town:" : "county:") + id]; return r ? r.open : 0; };
      const ids = (towns ? state.outlines.town : state.outlines.district).map((x) => x.id);
      const breaks = breaksFor(ids.map(value));
      fillBy(towns ? "town" : "district", value, breaks);
      for (const d of state.outlines.district) {
        const r = c["county:" + d.id];
        const pt = centroid(d.polygons);
        if (!pt) continue;
        label(pt[0], pt[1], d.name + "中心", 12, null, -8);
        label(pt[0], pt[1], r ? `未办结${r.open} 超时${r.overdue}` : "无工单", 11, "sub", 8);
      }
      rampLegend(towns ? "街镇中心未办结工单（标注：区县中心）" : "区县中心未办结工单", breaks);
      const total = Object.values(c).reduce((s, r) => ({ open: s.open + r.open, overdue: s.overdue + r.overdue, new: s.new + r.new }), { open: 0, overdue: 0, new: 0 });
      const city = c.city || { open: 0, overdue: 0 };
      tiles([[total.open, "未办结"], [total.new, "待派遣"], [total.overdue, "超时", total.overdue ? "red" : ""], [city.open, "市中心未办结"]]);
      const rows = Object.entries(c).map(([k, r]) => [centreName(k), r.open, r.new, r.overdue]);
      section("各指挥中心", table(["中心", "未办结", "待派遣", "超时"], rows, true));
      if (!total.open) note("当前没有未办结工单");
    },
  };

  function renderTheme() {
    if (!state.base) return;
    clear($("marks")); clear($("labels")); clear($("side-body")); clear($("tiles"));
    note("");
    $("side-title").textContent = THEME_ZH[state.theme];
    for (const b of document.querySelectorAll("#themes button")) b.setAttribute("aria-selected", String(b.dataset.theme === state.theme));
    const p = state.picture;
    if (!p) { note("正在获取数据…"); for (const x of document.querySelectorAll("#fills path")) x.style.fill = ""; applyView(); return; }
    $("asof").textContent = "数据 " + fmtTime(p.ts_ms);
    $("simulated").hidden = !(p.outlines && p.outlines.simulated);
    for (const x of document.querySelectorAll("#fills path")) x.style.fill = "";  // no theme's tint stays
    THEMES[state.theme](p);
    applyView();
  }
  function setTheme(theme) {
    if (!THEMES[theme]) return;
    state.theme = theme;
    history.replaceState(null, "", location.pathname + "?theme=" + theme);
    renderTheme();
  }

  // -- connection -----------------------------------------------------------------------------
  function token() {
    const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem("cw-token", decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem("cw-token");
  }
  function setConn(kind, text) { $("conn").className = "conn " + kind; $("conn-text").textContent = text; }
  function renderUser() {
    const u = state.user, who = $("who");
    clear(who);
    if (!u) { who.textContent = "未登录"; return; }
    who.appendChild(el("b", null, u.name));
    who.appendChild(document.createTextNode(" · " + (ROLE_ZH[u.role] || u.role)));
  }
  function connect() {
    const tok = token();
    if (!tok) { $("login").hidden = false; setConn("down", "未登录"); return; }
    $("login").hidden = true;
    setConn("wait", "连接中");
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/feed");
    state.ws = ws;
    let timer = null;
    const ask = () => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ op: "cockpit", req: "c" + (++state.req) })); };
    ws.onopen = () => { ws.send(JSON.stringify({ op: "auth", token: tok })); };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "welcome") {
        state.user = msg.user; state.backoff = 500; renderUser(); setConn("up", "已连接");
        ask(); timer = setInterval(ask, POLL_MS);
      } else if (msg.type === "cockpit") {
        state.picture = msg.cockpit; renderTheme();
      } else if (msg.type === "error") {
        setConn("wait", "数据暂不可用");
      }
    };
    ws.onclose = (ev) => {
      if (timer) clearInterval(timer);
      state.ws = null;
      if (ev.code === 1008) {
        sessionStorage.removeItem("cw-token"); state.user = null; renderUser();
        setConn("down", "令牌无效"); $("login").hidden = false; return;
      }
      setConn("down", "已断开，重连中");
      setTimeout(connect, state.backoff);
      state.backoff = Math.min(state.backoff * 2, 10000);
    };
  }

  // -- input ----------------------------------------------------------------------------------
  function bindMap() {
    const box = $("mapbox");
    let drag = null, frame = 0;
    box.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const [sx, sy] = screenPoint(ev);
      zoomAt(Math.pow(1.2, -Math.sign(ev.deltaY) * Math.min(3, Math.abs(ev.deltaY) / 100 || 1)), sx, sy);
    }, { passive: false });
    box.addEventListener("pointerdown", (ev) => {
      if (ev.target.closest(".controls, .legend")) return;
      drag = { x: ev.clientX, y: ev.clientY, vx: state.view.x, vy: state.view.y };
      box.setPointerCapture(ev.pointerId);
      box.classList.add("dragging");
    });
    box.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      const r = $("map").getBoundingClientRect(), f = state.size.w / r.width;
      state.view.x = drag.vx + (ev.clientX - drag.x) * f;
      state.view.y = drag.vy + (ev.clientY - drag.y) * f;
      if (!frame) frame = requestAnimationFrame(() => { frame = 0; applyView(); });
    });
    const end = () => { drag = null; box.classList.remove("dragging"); };
    box.addEventListener("pointerup", end);
    box.addEventListener("pointercancel", end);
    const mid = () => [state.size.w / 2, state.size.h / 2];
    $("zoom-in").addEventListener("click", () => zoomAt(1.5, ...mid()));
    $("zoom-out").addEventListener("click", () => zoomAt(1 / 1.5, ...mid()));
    $("zoom-reset").addEventListener("click", resetView);
    box.addEventListener("keydown", (ev) => {
      const step = 60;
      const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (moves[ev.key]) { state.view.x += moves[ev.key][0]; state.view.y += moves[ev.key][1]; applyView(); }
      else if (ev.key === "+" || ev.key === "=") zoomAt(1.5, ...mid());
      else if (ev.key === "-" || ev.key === "_") zoomAt(1 / 1.5, ...mid());
      else if (ev.key === "0") resetView();
      else return;
      ev.preventDefault();
    });
    window.addEventListener("resize", () => { drawOutlines(); });
  }

  async function start() {
    for (const b of document.querySelectorAll("#themes button")) b.addEventListener("click", () => setTheme(b.dataset.theme));
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem("cw-token", $("token").value);
      $("token").value = "";
      connect();
    });
    bindMap();
    const wanted = new URLSearchParams(location.search).get("theme");
    if (wanted && THEMES[wanted]) state.theme = wanted;
    try { state.config = await (await fetch("/config.json")).json(); } catch (e) { state.config = null; }
    for (const c of (state.config && state.config.centres) || []) state.names.set(c.id, c.name);
    const sim = state.config && state.config.outlines;
    $("simulated").hidden = !(sim && sim.simulated);
    for (const level of ["district", "town"]) {
      try { state.outlines[level] = parseOutlines(await (await fetch(`/outlines/${level}.geojson`)).json()); }
      catch (e) { state.outlines[level] = []; }
    }
    for (const t of state.outlines.town) if (!state.names.has("town:" + t.id)) state.names.set("town:" + t.id, t.name);
    drawOutlines();
    connect();
  }
  document.addEventListener("DOMContentLoaded", start);
})();

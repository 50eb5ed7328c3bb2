// citywatch duty-officer console. Vanilla JS, no dependencies, nothing loaded from elsewhere.
// Every string that came from the feed is put into the page with textContent or as an SVG
// attribute value, never parsed as HTML.
"use strict";

(() => {
  const LEVELS = { red: 4, orange: 3, yellow: 2, blue: 1 };
  const LEVEL_ZH = { red: "红色", orange: "橙色", yellow: "黄色", blue: "蓝色" };
  const LEVEL_COLOUR = { red: "#d7263d", orange: "#f46036", yellow: "#e8c547", blue: "#2e86de" };
  const STATUS_ZH = {
    new: "待派遣", dispatched: "待签收", signed: "已签收", rejected: "已退回",
    handling: "处置中", feedback: "已反馈", closed: "已办结", shelved: "已挂起",
  };
  const ACTION_ZH = {
    dispatch: "派遣", sign: "签收", reject: "退回", handle: "开始处置", feedback: "反馈",
    close: "办结", shelve: "挂起", reopen: "重新打开", escalate: "超时升级",
  };
  const RULE_ZH = {
    "air.exceedance": "空气超标", "air.spike": "空气突增", "air.stuck": "数据卡滞",
    "air.range": "数据越界", "air.drift": "传感漂移", "air.episode": "区域污染过程",
    "vehicle.dwell": "危化车异常停留", "vehicle.workshop": "疑似非法作坊",
    "worksite.resumption": "违规复工", "hotline.duplicate": "热线重复工单",
    "hotline.surge": "热线激增", "hotline.unplaced": "地址待核实", "incident.correlated": "关联事件",
    "water.event": "水质突变", "water.range": "水质超标", "water.stuck": "水质数据卡滞",
  };
  // Must match sinks/feed/lifecycle.py: which actions each status allows.
  const ALLOWED = {
    new: ["dispatch", "close", "shelve"],
    dispatched: ["sign", "reject", "dispatch", "shelve"],
    rejected: ["dispatch", "close", "shelve"],
    signed: ["handle", "feedback", "shelve"],
    handling: ["feedback", "shelve"],
    feedback: ["close", "handle"],
    closed: ["reopen"],
    shelved: ["reopen"],
  };
  const TIER_ZH = { city: "市级", county: "区县级", town: "街镇级" };
  const ROLE_ZH = { duty_officer: "值班员", handler: "部门处置员", leader: "领导（只读）", admin: "管理员" };
  const UNACKNOWLEDGED = new Set(["new", "dispatched"]);
  const ACTIVE = new Set(["dispatched", "signed", "rejected", "handling", "feedback", "shelved"]);

  const $ = (id) => document.getElementById(id);
  const state = {
    alerts: new Map(),      // id -> {alert, wo, timeline: []}
    sid: null, aid: null,   // stream positions for resume
    selected: null,
    ws: null, backoff: 500, lastMsgMs: 0,
    config: { region: { lat_min: 31.6, lat_max: 32.7, lon_min: 120.2, lon_max: 121.9 },
              departments: [], heartbeat_s: 15 },
    districts: [], sound: false, audio: null, req: 0, live: false, inSnapshot: false,
    user: null,             // who logged in (the welcome message): the server decides, we only show
    everLive: false,        // had a complete picture once (a snapshot or backfill reached "live")
    open: 0,                // open alerts and active orders, before the view's filters
    conn: "down",           // up | wait | down
  };

  // -- small DOM helpers (text only) --------------------------------------------------------
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
  function fmtAge(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + "秒";
    if (s < 3600) return Math.floor(s / 60) + "分";
    if (s < 86400) return Math.floor(s / 3600) + "时" + Math.floor((s % 3600) / 60) + "分";
    return Math.floor(s / 86400) + "天" + Math.floor((s % 86400) / 3600) + "时";
  }
  function fmtTime(ms) {
    if (!ms) return "–";
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getMonth() + 1}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  function fmtDur(ms) { return ms === null || ms === undefined ? "–" : fmtAge(ms); }
  function fmtRate(r) { return r === null || r === undefined ? "–" : (100 * r).toFixed(1) + "%"; }
  function sidMs(sid) { return Number(String(sid).split("-")[0]); }
  function place(a) {
    const parts = [];
    if (a.district) parts.push(a.district);
    if (a.subject) parts.push(`${a.subject.kind}:${a.subject.id}`);
    return parts.join(" · ");
  }
  // Whether the logged-in identity may take `action` on this work order (the server checks
  // again: this only keeps buttons that would be refused from looking usable).
  function mayAct(action, wo) {
    const u = state.user;
    if (!u || !u.actions.includes(action)) return false;
    return !u.dept_bound || (wo.dept || null) === u.dept;
  }

  // -- connection ---------------------------------------------------------------------------
  function token() {
    const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem("cw-token", decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);  // keep the token out of the address bar
    }
    return sessionStorage.getItem("cw-token");
  }

  function setConn(kind, text) {
    state.conn = kind;
    $("conn").className = "conn " + kind;
    $("conn-text").textContent = text;
    renderStale();
  }

  // Never claim "no alerts" while we cannot know: before the first complete picture, while
  // disconnected or reconnecting, or when the heartbeat stopped, the list may be out of date.
  function renderStale() {
    const banner = $("stale");
    let text = "";
    if (!state.live) {
      text = state.everLive ? "已断开：列表可能不是最新（正在重连）" : "正在连接：尚未收到预警列表";
      if (state.conn === "down" && !state.everLive) text = "未连接：尚未收到预警列表";
    } else if (state.conn !== "up") {
      text = "无心跳：列表可能不是最新";
    }
    banner.textContent = text;
    banner.hidden = !text;
    banner.classList.toggle("wait", state.live || !state.everLive);
    const shown = $("rows").children.length;
    const known = state.live && state.conn === "up";
    $("empty").hidden = !known || shown > 0;
    $("empty").textContent = state.open ? "无符合筛选条件的预警" : "暂无预警";
  }

  function renderUser() {
    const u = state.user, who = $("who");
    clear(who);
    $("logout").hidden = !sessionStorage.getItem("cw-token");
    if (!u) { who.textContent = "未登录"; return; }
    who.appendChild(el("b", null, u.name));
    const where = u.dept || u.centre;
    who.appendChild(document.createTextNode(" · " + (ROLE_ZH[u.role] || u.role) + (where ? " · " + where : "")));
  }

  function logout() {
    sessionStorage.removeItem("cw-token");
    state.user = null;
    if (state.ws) { const ws = state.ws; state.ws = null; ws.onclose = null; ws.close(1000, "logout"); }
    state.live = false;
    renderUser();
    setConn("down", "未登录");
    $("login").hidden = false;
    render();
  }

  function connect() {
    const tok = token();
    renderUser();
    if (!tok) { $("login").hidden = false; setConn("down", "未登录"); return; }
    $("login").hidden = true;
    setConn("wait", "连接中");
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/feed");
    state.ws = ws;
    state.live = false;
    state.inSnapshot = false;
    ws.onopen = () => {
      ws.send(JSON.stringify({ op: "auth", token: tok }));
      const sub = { op: "subscribe", since: state.sid };
      if (state.sid !== null && state.aid !== null) sub.audit_since = state.aid;
      ws.send(JSON.stringify(sub));
    };
    ws.onmessage = (ev) => {
      state.lastMsgMs = Date.now();
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      handle(msg);
    };
    ws.onclose = (ev) => {
      state.ws = null;
      state.live = false;
      if (ev.code === 1008) {
        sessionStorage.removeItem("cw-token");
        state.user = null;
        renderUser();
        setConn("down", ev.reason === "token revoked" ? "令牌已吊销" : "令牌无效");
        $("login").hidden = false;
        return;
      }
      const wait = ev.code === 1013 ? 100 : state.backoff;
      setConn("down", ev.code === 1013 ? "追赶中" : "已断开，重连中");
      state.backoff = Math.min(state.backoff * 2, 10000);
      setTimeout(connect, wait);
    };
  }

  function send(obj) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
    state.ws.send(JSON.stringify(obj));
    return true;
  }

  function handle(msg) {
    switch (msg.type) {
      case "welcome":
        state.user = msg.user || null;
        if (state.user && state.user.role === "leader" && !/[?&]console\b/.test(location.search)) {
          location.replace("/cockpit");  // a leader's place is the cockpit (its link comes back)
          return;
        }
        setCentreDefault();
        renderUser();
        if (state.selected) renderDetail();
        break;
      case "snapshot":
        if (!state.inSnapshot) state.alerts.clear();  // a fresh picture replaces what we had
        state.inSnapshot = Boolean(msg.more);          // it may come in several chunks
        for (const item of msg.alerts || []) upsert(item.alert, item.wo, false);
        state.sid = msg.sid; state.aid = msg.aid;
        render();
        break;
      case "alert":
        upsert(msg.alert, null, state.live, msg.centre);
        state.sid = msg.sid;
        if (state.live) showLag(Date.now() - sidMs(msg.sid));
        scheduleRender();
        break;
      case "lifecycle":
        applyEvent(msg.event, msg.aid);
        state.aid = msg.aid;
        scheduleRender();
        scheduleMetrics();
        break;
      case "live":
        state.live = true; state.everLive = true; state.backoff = 500;
        state.sid = msg.sid; state.aid = msg.aid;
        setConn("up", "已连接");
        render();
        requestMetrics();
        break;
      case "heartbeat":
        showLag(Date.now() - msg.ts_ms);
        if (state.live) setConn("up", "已连接");
        break;
      case "ack":
        if (msg.id && state.alerts.has(msg.id)) {
          const rec = state.alerts.get(msg.id);
          if (!rec.wo || msg.wo.rev >= (rec.wo.rev || 0)) rec.wo = msg.wo;
          scheduleRender();
        }
        $("d-msg").textContent = "";
        break;
      case "metrics": renderMetrics(msg.metrics); break;
      case "search": renderResults(msg); break;
      case "history": {
        const rec = state.alerts.get(msg.id);
        if (rec) for (const item of msg.events || []) rec.events.set(item.aid, item.event);
        if (msg.id === state.selected) renderDetail();
        break;
      }
      case "error":
        if (msg.req && String(msg.req).startsWith("q")) { searchError(msg); break; }
        $("d-msg").textContent = (msg.code === "forbidden" ? "无权操作：" : "操作未执行：") + msg.message;
        break;
      default: break;
    }
  }

  function showLag(ms) {
    const lag = $("lag");
    lag.textContent = "延迟 " + (ms < 1000 ? Math.max(0, Math.round(ms)) + " ms" : (ms / 1000).toFixed(1) + " s");
    lag.classList.toggle("bad", ms > 2000);
  }

  // -- state --------------------------------------------------------------------------------
  function upsert(alert, wo, isLive, centre) {
    if (!alert || !alert.id) return;
    const old = state.alerts.get(alert.id);
    if (old && old.alert.version > alert.version) return;  // stale repeat: ids and versions decide
    const rec = old || { alert, wo: wo || { status: "new", rev: 0 }, timeline: [], events: new Map() };
    if (wo && (!old || wo.rev >= (rec.wo.rev || 0))) rec.wo = wo;
    // A resolved alert that fires again (same id, next version) is back on the live list.
    const back = !!old && old.alert.state === "resolved" && alert.state === "firing";
    if (!old || old.alert.version !== alert.version) {
      const what = !old ? "首次预警" : back ? "再次预警" : (alert.state === "resolved" ? "已解除" :
        (old.alert.level !== alert.level ? "级别变为" + LEVEL_ZH[alert.level] : "更新"));
      rec.timeline.push({ ts: alert.emitted_ms || alert.last_ts, text: what });
    }
    rec.alert = alert;
    if (centre) rec.wo.centre = centre;  // the centre its order belongs to now (server-side)
    state.alerts.set(alert.id, rec);
    // A closed order of a returning alert is reopened by the sink (its event may come after).
    const fresh = rec.wo.status === "new" || (back && rec.wo.status === "closed");
    if (isLive && (!old || back) && alert.level === "red" && fresh) beep();
  }

  function applyEvent(ev, aid) {
    const rec = state.alerts.get(ev.id);
    if (!rec) return;
    rec.events.set(aid, ev);
    if ((rec.wo.rev || 0) < ev.rev) {
      rec.wo = {
        status: ev.to, dept: ev.dept, assignee: ev.assignee, deadline_ms: ev.deadline_ms,
        overdue: ev.overdue, updated_ms: ev.ts_ms, updated_by: ev.actor, rev: ev.rev,
        shelved_until: ev.until_ms || null, centre: ev.centre || rec.wo.centre,
      };
    }
  }

  function eventText(ev) {
    let text = (ACTION_ZH[ev.action] || ev.action) + " · " + (ev.actor || "");
    if (ev.dept && ev.action === "dispatch") text += " → " + ev.dept;
    if (ev.reason) text += " · 理由：" + ev.reason;
    if (ev.note) text += " · " + ev.note;
    if (ev.action === "escalate") text += ev.kind === "signoff" ? "（签收超时）" : "（办理超时）";
    return text;
  }

  // -- rendering ----------------------------------------------------------------------------
  let renderPending = false;
  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    requestAnimationFrame(() => { renderPending = false; render(); });
  }

  function visible() {
    const levels = new Set([...document.querySelectorAll(".f-level")].filter((c) => c.checked).map((c) => c.value));
    const rule = $("f-rule").value, district = $("f-district").value, st = $("f-status").value;
    const centre = $("f-centre").value === "mine" ? myCentre() : $("f-centre").value;
    const out = [];
    state.open = 0;
    for (const rec of state.alerts.values()) {
      const a = rec.alert, s = rec.wo.status;
      if (a.state !== "firing" && !ACTIVE.has(s)) continue;
      state.open += 1;  // open before the view's filters: "no alerts" vs "none match"
      if (!levels.has(a.level)) continue;
      if (rule && a.rule !== rule) continue;
      if (district && a.district !== district) continue;
      if (centre && (rec.wo.centre || "") !== centre) continue;
      if (st === "pending" && !UNACKNOWLEDGED.has(s)) continue;
      if (st === "working" && !["signed", "handling", "feedback", "rejected"].includes(s)) continue;
      if (st === "done" && !["closed", "shelved"].includes(s)) continue;
      out.push(rec);
    }
    out.sort((x, y) => (LEVELS[y.alert.level] - LEVELS[x.alert.level]) ||
      ((y.wo.overdue ? 1 : 0) - (x.wo.overdue ? 1 : 0)) ||
      (y.alert.first_ts - x.alert.first_ts));
    return out;
  }

  function render() {
    const recs = visible();
    const now = Date.now();
    const body = $("rows");
    clear(body);
    for (const rec of recs) {
      const a = rec.alert, wo = rec.wo;
      const tr = el("tr");
      tr.dataset.id = a.id;
      if (UNACKNOWLEDGED.has(wo.status) && a.state === "firing") tr.classList.add("blink");
      if (a.state !== "firing") tr.classList.add("resolved");
      if (a.id === state.selected) tr.classList.add("selected");
      const lv = el("td"); lv.appendChild(el("span", "lvl " + a.level, LEVEL_ZH[a.level] || a.level));
      tr.appendChild(lv);
      tr.appendChild(el("td", "age", fmtAge(now - a.first_ts)));
      tr.appendChild(el("td", "rule", RULE_ZH[a.rule] || a.rule));
      tr.appendChild(el("td", "place", place(a)));
      tr.appendChild(el("td", "title", a.title));
      const st = el("td", "status", STATUS_ZH[wo.status] || wo.status);
      if (wo.overdue) st.appendChild(el("span", "badge overdue", wo.overdue === "signoff" ? "签收超时" : "办理超时"));
      if (a.state !== "firing") st.appendChild(el("span", "badge", "已解除"));
      tr.appendChild(st);
      tr.addEventListener("click", () => select(a.id));
      body.appendChild(tr);
    }
    renderStale();
    renderCounts();
    renderMarkers(recs);
    refreshFilters();
    if (state.selected) renderDetail();
  }

  function renderCounts() {
    const n = { red: 0, orange: 0, yellow: 0, blue: 0 };
    for (const rec of state.alerts.values()) if (rec.alert.state === "firing") n[rec.alert.level] += 1;
    const box = $("counts");
    clear(box);
    for (const lv of ["red", "orange", "yellow", "blue"]) {
      box.appendChild(el("span", "lvl " + lv, LEVEL_ZH[lv] + " " + n[lv]));
    }
  }

  function refreshFilters() {
    const rules = new Set(), districts = new Set(), centres = new Set();
    for (const rec of state.alerts.values()) {
      rules.add(rec.alert.rule);
      if (rec.wo.centre) centres.add(rec.wo.centre);
      if (rec.alert.district) districts.add(rec.alert.district);
    }
    for (const d of state.districts) districts.add(d.name);
    fillSelect($("f-rule"), rules, (r) => RULE_ZH[r] || r);
    fillSelect($("f-district"), districts, (d) => d);
    fillSelect($("f-centre"), centres, centreName);
  }

  // -- centres (three-tier command) ---------------------------------------------------------
  function myCentre() { return (state.user && state.user.centre_id) || "city"; }
  function centreName(c) {
    if (!c || c === "city") return "市中心";
    const known = (state.config.centres || []).find((x) => x.id === c);
    if (known) return c.startsWith("county:") ? known.name + "中心" : known.district + " · " + known.name;
    return c.replace(/^(county|town):/, "");
  }
  // A town or county centre's officer sees their own queue first; the city sees everything.
  function setCentreDefault() {
    const sel = $("f-centre"), u = state.user;
    sel.options[1].textContent = "本中心（" + centreName(myCentre()) + "）";
    if (!state.centreChosen) sel.value = u && u.centre_bound ? "mine" : "";
  }

  function fillSelect(sel, values, label) {
    const have = new Set([...sel.options].map((o) => o.value));
    for (const v of [...values].sort()) {
      if (have.has(v)) continue;
      const o = el("option", null, label(v));
      o.value = v;
      sel.appendChild(o);
    }
  }

  // -- map ----------------------------------------------------------------------------------
  const W = 600, H = 420;
  let proj = null;
  function makeProjection() {
    let { lat_min, lat_max, lon_min, lon_max } = state.config.region;
    const pts = state.districts.flatMap((d) => d.rings[0] || []);
    if (pts.length) {
      lon_min = Math.min(...pts.map((p) => p[0])); lon_max = Math.max(...pts.map((p) => p[0]));
      lat_min = Math.min(...pts.map((p) => p[1])); lat_max = Math.max(...pts.map((p) => p[1]));
    }
    const k = Math.cos(((lat_min + lat_max) / 2) * Math.PI / 180);
    const sx = (W - 20) / ((lon_max - lon_min) * k), sy = (H - 20) / (lat_max - lat_min);
    const s = Math.min(sx, sy);
    const ox = (W - (lon_max - lon_min) * k * s) / 2, oy = (H - (lat_max - lat_min) * s) / 2;
    proj = (lon, lat) => [ox + (lon - lon_min) * k * s, oy + (lat_max - lat) * s];
  }

  function drawDistricts() {
    makeProjection();
    const g = $("districts"), labels = $("labels");
    clear(g); clear(labels);
    for (const d of state.districts) {
      let path = "";
      for (const ring of d.rings) {
        ring.forEach((p, i) => {
          const [x, y] = proj(p[0], p[1]);
          path += (i ? "L" : "M") + x.toFixed(1) + "," + y.toFixed(1);
        });
        path += "Z";
      }
      const p = svg("path", { d: path });
      p.appendChild(svg("title")).textContent = d.name;
      g.appendChild(p);
      const ring = d.rings[0] || [];
      if (ring.length) {
        const cx = ring.reduce((s, q) => s + q[0], 0) / ring.length;
        const cy = ring.reduce((s, q) => s + q[1], 0) / ring.length;
        const [x, y] = proj(cx, cy);
        const t = svg("text", { x: x.toFixed(1), y: y.toFixed(1) });
        t.textContent = d.name;
        labels.appendChild(t);
      }
    }
  }

  function renderMarkers(recs) {
    if (!proj) makeProjection();
    const g = $("markers");
    clear(g);
    for (const rec of [...recs].reverse()) {  // red drawn last, on top
      const a = rec.alert;
      if (typeof a.lat !== "number" || typeof a.lon !== "number") continue;
      const [x, y] = proj(a.lon, a.lat);
      const c = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 3 + LEVELS[a.level], fill: LEVEL_COLOUR[a.level] || "#999" });
      if (UNACKNOWLEDGED.has(rec.wo.status) && a.state === "firing") c.classList.add("blink");
      if (a.id === state.selected) c.classList.add("sel");
      c.dataset.id = a.id;
      c.appendChild(svg("title")).textContent = a.title;
      c.addEventListener("click", () => select(a.id));
      g.appendChild(c);
    }
  }

  // -- detail and actions ---------------------------------------------------------------------
  // -- search ---------------------------------------------------------------------------------
  const KIND_ZH = { alert: "预警", ticket: "热线", order: "工单" };
  function search(e) {
    if (e) e.preventDefault();
    const q = $("q").value.trim();
    if (!q) return;
    const msg = { op: "search", q, limit: 20, req: "q" + (++state.req) };
    if ($("q-kind").value) msg.kinds = [$("q-kind").value];
    if ($("q-since").value) msg.from = Date.now() - Number($("q-since").value) * 86400000;
    $("results").hidden = false;
    clear($("r-list"));
    $("r-summary").textContent = send(msg) ? "搜索中…" : "未连接，无法搜索";
  }
  function searchError(msg) {
    $("results").hidden = false;
    clear($("r-list"));
    $("r-summary").textContent = (msg.code === "search_unavailable" ? "搜索不可用：" : "搜索有误：") + msg.message;
  }
  function renderResults(msg) {
    $("results").hidden = false;
    const list = $("r-list");
    clear(list);
    $("r-summary").textContent = msg.hits.length
      ? "“" + msg.query + "”：" + msg.matched + (msg.capped ? "+" : "") + " 条，显示前 " + msg.hits.length + " 条"
      : "“" + msg.query + "”：没有结果";
    for (const h of msg.hits) {
      const li = el("li");
      li.appendChild(el("span", "kind", KIND_ZH[h.kind] || h.kind));
      if (h.level) li.appendChild(el("span", "lvl " + ({ 4: "red", 3: "orange", 2: "yellow", 1: "blue" })[h.level], ""));
      li.appendChild(el("span", "when", fmtTime(h.ts)));
      li.appendChild(el("span", null, h.title));
      if (h.partial) li.appendChild(el("span", "badge", "部分匹配"));
      const snip = el("span", "snip");
      for (const [text, isHit] of h.snippet) snip.appendChild(isHit ? el("mark", null, text) : document.createTextNode(text));
      li.appendChild(snip);
      li.addEventListener("click", () => openHit(h));
      list.appendChild(li);
    }
  }
  function openHit(h) {
    const id = h.ref;
    if ((h.kind === "alert" || h.kind === "order") && state.alerts.has(id)) {
      $("hit").hidden = true;
      select(id);
      return;
    }
    // Not on the live list (resolved and gone, or a ticket): what the index knows.
    $("detail").hidden = true;
    $("hit").hidden = false;
    $("h-title").textContent = (KIND_ZH[h.kind] || h.kind) + " · " + h.title;
    const dl = $("h-fields");
    clear(dl);
    const rows = [["编号", id], ["时间", fmtTime(h.ts)], ["区县", h.district || "–"], ["街镇", h.town || "–"],
      ["网格", h.grid || "–"], ["规则/类别", h.rule || "–"], ["状态", STATUS_ZH[h.status] || h.status || "–"]];
    for (const [k, v] of rows) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); }
    $("h-body").textContent = h.body;
  }

  function select(id) {
    $("hit").hidden = true;
    state.selected = id;
    send({ op: "history", id });  // the timeline from before this page was opened
    $("detail").hidden = false;
    $("d-msg").textContent = "";
    render();
  }

  function renderDetail() {
    const rec = state.alerts.get(state.selected);
    if (!rec) { $("detail").hidden = true; return; }
    const a = rec.alert, wo = rec.wo;
    $("d-title").textContent = a.title || a.rule;
    const dl = $("d-fields");
    clear(dl);
    const rows = [
      ["级别", LEVEL_ZH[a.level] || a.level], ["规则", (RULE_ZH[a.rule] || a.rule) + "（" + a.rule + "）"],
      ["对象", a.subject ? a.subject.kind + ":" + a.subject.id : "–"], ["区县", a.district || "–"],
      ["网格", a.grid || "–"], ["坐标", typeof a.lat === "number" ? a.lat.toFixed(5) + ", " + a.lon.toFixed(5) : "–"],
      ["开始", fmtTime(a.first_ts)], ["最近", fmtTime(a.last_ts)], ["状态", a.state === "firing" ? "持续中" : "已解除"],
      ["评分", typeof a.score === "number" ? a.score.toFixed(2) : "–"], ["次数", a.count], ["模型", a.model || "–"],
      ["工单", (STATUS_ZH[wo.status] || wo.status) + (wo.overdue ? "（超时）" : "")],
      ["部门", wo.dept || "–"], ["时限", fmtTime(wo.deadline_ms)], ["指挥中心", centreName(wo.centre)],
    ];
    for (const [k, v] of rows) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); }
    const ev = $("d-evidence");
    clear(ev);
    for (const [k, v] of Object.entries(a.evidence || {})) {
      const tr = el("tr");
      tr.appendChild(el("td", null, k));
      tr.appendChild(el("td", null, typeof v === "object" ? JSON.stringify(v) : v));
      ev.appendChild(tr);
    }
    const allowed = new Set(ALLOWED[wo.status] || []);
    const u = state.user;
    for (const b of document.querySelectorAll("#d-actions button")) {
      const a = b.dataset.action;
      b.hidden = !u || !u.actions.includes(a);  // what this role can never do is not offered
      b.disabled = !allowed.has(a) || !mayAct(a, wo);
    }
    $("a-dept").hidden = !u || !u.actions.includes("dispatch");
    renderSuggestions(a, wo, !u || !u.actions.includes("dispatch"));
    $("a-text").hidden = !u || !u.actions.length;
    const note = $("d-role");
    let text = "";
    if (u && !u.actions.length) text = "只读账号：可查看预警、时间线和处置效能，不能操作工单。";
    else if (u && u.dept_bound && wo.dept !== u.dept && u.actions.some((a) => allowed.has(a))) {
      text = "此工单" + (wo.dept ? "派给" + wo.dept : "尚未派遣") + "，" + u.dept + "不能处理。";
    }
    note.textContent = text;
    note.hidden = !text;
    const tl = $("d-timeline");
    clear(tl);
    const items = [...rec.timeline, ...[...rec.events.values()].map((ev) => ({ ts: ev.ts_ms, text: eventText(ev) }))];
    items.sort((x, y) => x.ts - y.ts);
    for (const item of items) {
      const li = el("li");
      li.appendChild(el("b", null, fmtTime(item.ts) + " "));
      li.appendChild(document.createTextNode(item.text));
      tl.appendChild(li);
    }
  }

  // The hotline model's routing suggestion (evidence.routing: top three departments with
  // their probability): shown by the dispatch control, a click picks the department.
  function renderSuggestions(a, wo, hide) {
    const box = $("a-suggest");
    clear(box);
    const routing = Array.isArray((a.evidence || {}).routing) ? a.evidence.routing.slice(0, 3) : [];
    box.hidden = hide || !routing.length;
    if (box.hidden) return;
    box.appendChild(el("span", null, "推荐派遣："));
    const select = $("a-dept");
    routing.forEach((r, i) => {
      const dept = String(r.dept || "");
      if (!dept) return;
      const chip = el("button", "chip", dept + " " + Math.round(100 * Number(r.p || 0)) + "%");
      chip.type = "button";
      chip.title = "按模型建议选择派遣部门";
      chip.addEventListener("click", () => pickDept(dept));
      box.appendChild(chip);
      if (i === 0 && wo.status === "new" && select.dataset.picked !== a.id) pickDept(dept, a.id);
    });
  }

  function pickDept(dept, auto) {
    const select = $("a-dept");
    if (![...select.options].some((o) => o.value === dept)) {
      const o = el("option", null, dept); o.value = dept; select.appendChild(o);
    }
    select.value = dept;
    select.dataset.picked = auto || state.selected || "";
  }

  function act(action) {
    const id = state.selected;
    if (!id) return;
    const text = $("a-text").value.trim();
    const msg = { op: "action", action, id, req: String(++state.req) };  // who acts: the login
    if (action === "dispatch") msg.dept = $("a-dept").value;
    if (action === "reject" || action === "shelve" || action === "close" || action === "reopen") {
      if (text) msg.reason = text;
    }
    if (action === "feedback" && text) msg.note = text;
    if (action === "reject" && !text) { $("d-msg").textContent = "退回请填写理由"; return; }
    if (action === "shelve") {
      const h = Number(text.split(/\s+/)[0]);
      if (!(h > 0)) { $("d-msg").textContent = "挂起请填写小时数和理由，如：4 等待夜间核查"; return; }
      msg.until_ms = Date.now() + Math.round(h * 3600000);
      msg.reason = text.split(/\s+/).slice(1).join(" ") || "挂起";
    }
    if (!send(msg)) $("d-msg").textContent = "未连接，操作未发送";
    $("a-text").value = "";
  }

  // -- metrics ------------------------------------------------------------------------------
  let metricsTimer = null;
  function requestMetrics() { send({ op: "metrics" }); }
  function scheduleMetrics() {
    if (metricsTimer) return;
    metricsTimer = setTimeout(() => { metricsTimer = null; requestMetrics(); }, 2000);
  }
  let lastMetrics = null;
  function renderMetrics(m) {
    if (!m) return;
    lastMetrics = m;
    const group = $("m-group").value;
    $("m-head").textContent = { by_district: "区县", by_tier: "层级", by_centre: "指挥中心" }[group] || "部门";
    const label = group === "by_tier" ? (t) => TIER_ZH[t] || t : group === "by_centre" ? centreName : (x) => x;
    const body = $("m-rows");
    clear(body);
    const rows = [["合计", m.total], ...Object.entries(m[group] || {}).map(([k, r]) => [k === "?" ? "未知" : label(k), r])];
    for (const [name, r] of rows) {
      const tr = el("tr");
      for (const v of [name, r.dispatched, fmtDur(r.signoff_ms_median), fmtDur(r.handling_ms_median),
        fmtRate(r.rejection_rate), fmtRate(r.overdue_rate), fmtRate(r.closure_rate)]) {
        tr.appendChild(el("td", null, v));
      }
      body.appendChild(tr);
    }
  }

  // -- sound --------------------------------------------------------------------------------
  function beep() {
    if (!state.sound || !state.audio) return;
    const ctx = state.audio, t = ctx.currentTime;
    for (const [i, f] of [[0, 880], [1, 660], [2, 880]]) {
      const o = ctx.createOscillator(), g = ctx.createGain();
      o.frequency.value = f; o.type = "square";
      g.gain.setValueAtTime(0.08, t + i * 0.18);
      g.gain.setValueAtTime(0, t + i * 0.18 + 0.14);
      o.connect(g); g.connect(ctx.destination);
      o.start(t + i * 0.18); o.stop(t + i * 0.18 + 0.15);
    }
  }

  // -- start --------------------------------------------------------------------------------
  function parseDistricts(geo) {
    const out = [];
    for (const f of (geo && geo.features) || []) {
      const g = f.geometry || {};
      const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
      for (const rings of polys) out.push({ name: String((f.properties || {}).name || ""), rings });
    }
    return out;
  }

  async function start() {
    checkFonts();
    $("logout").addEventListener("click", logout);
    $("sound").addEventListener("click", () => {
      state.sound = !state.sound;
      if (state.sound && !state.audio) state.audio = new AudioContext();
      $("sound").textContent = state.sound ? "提示音 开" : "提示音 关";
      $("sound").classList.toggle("on", state.sound);
      $("sound").setAttribute("aria-pressed", String(state.sound));
    });
    for (const b of document.querySelectorAll("#d-actions button")) b.addEventListener("click", () => act(b.dataset.action));
    for (const f of document.querySelectorAll(".filters input, .filters select")) f.addEventListener("change", render);
    $("f-centre").addEventListener("change", () => { state.centreChosen = true; });
    $("m-refresh").addEventListener("click", requestMetrics);
    $("search-form").addEventListener("submit", search);
    $("r-close").addEventListener("click", () => { $("results").hidden = true; $("hit").hidden = true; });
    $("m-group").addEventListener("change", () => renderMetrics(lastMetrics));
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem("cw-token", $("token").value);
      $("token").value = "";
      connect();
    });
    try {
      state.config = await (await fetch("/config.json")).json();
    } catch (e) { /* defaults */ }
    for (const d of state.config.departments || []) {
      const o = el("option", null, d); o.value = d; $("a-dept").appendChild(o);
    }
    try {
      state.districts = parseDistricts(await (await fetch("/districts.geojson")).json());
    } catch (e) { state.districts = []; }
    drawDistricts();
    connect();
    setInterval(() => {  // ages tick (in place: rows are not rebuilt under the pointer)
      const now = Date.now();
      for (const tr of $("rows").children) {
        const rec = state.alerts.get(tr.dataset.id);
        if (rec) tr.querySelector("td.age").textContent = fmtAge(now - rec.alert.first_ts);
      }
      const hb = (state.config.heartbeat_s || 15) * 1000;
      if (state.ws && state.live && state.conn === "up" && Date.now() - state.lastMsgMs > 2.5 * hb) {
        setConn("wait", "无心跳");
      }
    }, 1000);
  }

  // -- fonts ----------------------------------------------------------------------------------
  // Whether two characters render as the same picture: without a font that has them, both
  // become the same "missing glyph" box. Measured, never fetched: no web fonts, no CDN.
  function glyphsMissing(a, b) {
    const c = document.createElement("canvas");
    c.width = 48; c.height = 48;
    const ctx = c.getContext("2d", { willReadFrequently: true });
    if (!ctx) return false;
    const family = getComputedStyle(document.body).fontFamily || "sans-serif";
    const picture = (ch) => {
      ctx.clearRect(0, 0, c.width, c.height);
      ctx.font = "32px " + family;
      ctx.textBaseline = "top";
      ctx.fillStyle = "#000";
      ctx.fillText(ch, 4, 4);
      return ctx.getImageData(0, 0, c.width, c.height).data;
    };
    const pa = picture(a), pb = picture(b);
    for (let i = 3; i < pa.length; i += 4) if (pa[i] !== pb[i]) return false;
    return true;
  }

  function checkFonts() {
    // 一 is one stroke, 龍 sixteen: with a CJK font they can never look alike.
    $("font-hint").hidden = !glyphsMissing("一", "龍");
  }

  window.citywatch = { state, glyphsMissing };  // for tests and debugging
  document.addEventListener("DOMContentLoaded", start);
})();

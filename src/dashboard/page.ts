/**
 * The dashboard's page, stylesheet and script, served by weft itself (no CDN: it must work on an
 * air-gapped cluster). The script follows /events (server-sent events) and re-renders the
 * picture, the host table and the matrix in place: no reloads. Every value is set as text, so
 * nothing from a host's row is parsed as HTML.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>weft cluster</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/app.css"></head>
<body>
<header><h1>weft cluster</h1><span id="status" data-status="connecting">connecting</span><span id="updated"></span></header>
<section><h2>Hosts and subnets</h2><svg id="picture" viewBox="0 0 600 360" role="img" aria-label="hosts and their links"></svg></section>
<section><h2>Host state</h2><table id="hosts"><thead><tr><th>host</th><th>subnet</th><th>backend</th><th>MTU</th><th>health</th><th>lease expires</th><th>repairs</th><th>last error</th><th>row age</th></tr></thead><tbody></tbody></table></section>
<section><h2>Reachability (overlay probes, row = from, column = to)</h2><table id="matrix"></table>
<p class="legend"><span class="cell" data-state="ok">ok</span> <span class="cell" data-state="fail">fail</span> <span class="cell" data-state="unknown">unknown</span></p></section>
<script src="/app.js"></script>
</body></html>
`

export const PAGE_CSS = `body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
header{display:flex;gap:1em;align-items:baseline}h1{font-size:1.4em;margin:0}h2{font-size:1.05em;margin:1.2em 0 .4em}
#status{padding:.1em .5em;border-radius:3px;background:#ddd}#status[data-status=live]{background:#c8f0c8}#status[data-status=lost]{background:#f6c6c6}
#updated{color:#777}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
#picture{width:600px;max-width:100%;height:360px;background:#fff;border:1px solid #ddd}
span.cell{display:inline-block;min-width:4.5em;text-align:center}td.cell{min-width:5em;text-align:center}td.self{text-align:center;color:#999}
td.cell,span.cell{color:#fff}[data-state=ok]{background:#2e9d4f}[data-state=fail]{background:#d62f2f}[data-state=unknown]{background:#999}
td.err{max-width:22em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}td[data-health=unreachable]{color:#d62f2f}td[data-health=starting]{color:#b07000}
`

export const PAGE_JS = `(function(){
'use strict';
var SVG='http://www.w3.org/2000/svg';
function el(tag,attrs,text){var e=document.createElement(tag);for(var k in attrs)e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e}
function sv(tag,attrs,text){var e=document.createElementNS(SVG,tag);for(var k in attrs)e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e}
function age(at,now){return at?Math.max(0,Math.round((now-at)/1000))+' s':'-'}
function cellOf(v,from,to){for(var i=0;i<v.cells.length;i++){var c=v.cells[i];if(c.from===from&&c.to===to)return c}return {state:'unknown'}}
function pair(v,a,b){var x=cellOf(v,a,b).state,y=cellOf(v,b,a).state;return x==='fail'||y==='fail'?'fail':x==='ok'&&y==='ok'?'ok':'unknown'}
var COLORS={ok:'#2e9d4f',fail:'#d62f2f',unknown:'#999'};
function picture(v){
  var svg=document.getElementById('picture');while(svg.firstChild)svg.removeChild(svg.firstChild);
  var n=v.hosts.length,cx=300,cy=180,r=n>1?130:0,pos={};
  v.hosts.forEach(function(h,i){var a=-Math.PI/2+2*Math.PI*i/Math.max(n,1);pos[h.id]=[cx+r*Math.cos(a),cy+r*Math.sin(a)]});
  for(var i=0;i<n;i++)for(var j=i+1;j<n;j++){var a=v.hosts[i].id,b=v.hosts[j].id,s=pair(v,a,b);
    svg.appendChild(sv('line',{x1:pos[a][0],y1:pos[a][1],x2:pos[b][0],y2:pos[b][1],stroke:COLORS[s],'stroke-width':s==='fail'?4:2,'data-link':a+' '+b,'data-state':s}))}
  v.hosts.forEach(function(h){var p=pos[h.id];
    svg.appendChild(sv('circle',{cx:p[0],cy:p[1],r:36,fill:h.health==='ready'?'#e8f4ff':h.health==='starting'?'#fff3d6':'#fde0e0',stroke:'#357','stroke-width':1.5,'data-host':h.id}));
    svg.appendChild(sv('text',{x:p[0],y:p[1]-2,'text-anchor':'middle','font-size':11},h.id));
    svg.appendChild(sv('text',{x:p[0],y:p[1]+12,'text-anchor':'middle','font-size':10,fill:'#555'},h.subnet||'no subnet'))});
}
function hosts(v){
  var tb=document.querySelector('#hosts tbody');while(tb.firstChild)tb.removeChild(tb.firstChild);
  v.hosts.forEach(function(h){var tr=el('tr',{'data-host':h.id});
    [h.id,h.subnet||'-',h.backend||'-',h.mtu?String(h.mtu):'-'].forEach(function(t){tr.appendChild(el('td',{},t))});
    tr.appendChild(el('td',{'data-health':h.health},h.health+(h.error?' ('+h.error+')':'')));
    tr.appendChild(el('td',{},h.leaseExpiresAt===undefined?'-':h.leaseExpiresAt===null?'never':new Date(h.leaseExpiresAt).toLocaleString()));
    tr.appendChild(el('td',{},h.repairs===undefined?'-':String(h.repairs)));
    tr.appendChild(el('td',{'class':'err'},h.lastError||'-'));
    tr.appendChild(el('td',{},age(h.at,v.at)));tb.appendChild(tr)});
}
function matrix(v){
  var t=document.getElementById('matrix');while(t.firstChild)t.removeChild(t.firstChild);
  var head=el('tr',{});head.appendChild(el('th',{},'from \\\\ to'));v.hosts.forEach(function(h){head.appendChild(el('th',{},h.id))});t.appendChild(head);
  v.hosts.forEach(function(f){var tr=el('tr',{});tr.appendChild(el('th',{},f.id));
    v.hosts.forEach(function(to){if(to.id===f.id){tr.appendChild(el('td',{'class':'self'},'-'));return}
      var c=cellOf(v,f.id,to.id);
      tr.appendChild(el('td',{'class':'cell','data-from':f.id,'data-to':to.id,'data-state':c.state,title:f.id+' -> '+to.id},
        c.state==='ok'?(c.rttMs!==undefined?c.rttMs.toFixed(2)+' ms':'ok'):c.state))});
    t.appendChild(tr)});
}
function render(v){picture(v);hosts(v);matrix(v);document.getElementById('updated').textContent='updated '+new Date(v.at).toLocaleTimeString()}
var status=document.getElementById('status');
function setStatus(s){status.setAttribute('data-status',s);status.textContent=s}
var es=new EventSource('/events');
es.onopen=function(){setStatus('live')};
es.onerror=function(){setStatus('lost')};
es.onmessage=function(m){setStatus('live');render(JSON.parse(m.data))};
})();
`

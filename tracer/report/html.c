/* SPDX-License-Identifier: MIT */
/* html.c - the self-contained HTML page of a session (see html.h).
 *
 * Data goes in as it is: the JSON documents inside <script
 * type="application/json"> (with "</" written "<\/" so no string can end
 * the element), SVGs as base64 data: URIs of <object> elements, the text
 * report HTML-escaped in a <pre>.  The page's script only reads those.
 */
#include "report/html.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static const char style[] =
    "body{font-family:sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}"
    "table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}"
    "th{background:#f3f3f3;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "pre{background:#f8f8f8;padding:.6em;font-size:12px;overflow-x:auto}object{width:100%;border:1px solid #ddd}"
    "#errors{color:#b00}#errors:empty{display:none}.lane{font-size:11px}";

/* Builds the summary and the GIL timeline from the embedded JSON.  ES5,
 * no library. */
static const char script[] =
    "window.onerror=function(m,s,l){document.getElementById('errors').textContent+='script error: '+m+' (line '+l+')\\n';};\n"
    "function el(t,a,txt){var e=document.createElement(t);for(var k in a)e.setAttribute(k,a[k]);"
    "if(txt!==undefined)e.textContent=txt;return e;}\n"
    "function bytes(b){var u=['B','KiB','MiB','GiB'],i=0;while(b>=1024&&i<3){b/=1024;i++;}return (i?b.toFixed(1):b)+' '+u[i];}\n"
    "function table(parent,head,rows,id){var t=el('table',id?{id:id}:{}),tr=el('tr');head.forEach(function(h){tr.appendChild(el('th',{},h));});"
    "t.appendChild(tr);rows.forEach(function(r){var tr=el('tr');r.forEach(function(c){tr.appendChild(el('td',typeof c==='number'?{'class':'n'}:{},String(c)));});"
    "t.appendChild(tr);});parent.appendChild(t);return t;}\n"
    "function summary(d,root){var procs=d.processes||[];root.appendChild(el('p',{},'command: '+(d.command||[]).join(' ')+"
    "'   exit status: '+d.exit_status+'   Python processes: '+procs.length));"
    "table(root,['pid','ppid','python','build','wall','GIL wait ratio','Python peak'],procs.map(function(p){"
    "return [p.pid,p.ppid,p.python.version,p.python.build,(p.wall_s>=0?p.wall_s.toFixed(3)+' s':'-'),"
    "(p.gil?p.gil.wait_ratio.toFixed(2):'-'),(p.alloc?bytes(p.alloc.peak_bytes):'-')];}),'processes');"
    "procs.forEach(function(p){var s=el('section',{id:'pid-'+p.pid});s.appendChild(el('h2',{},'pid '+p.pid+': '+(p.argv||[]).join(' ')));"
    "if(p.gil&&p.gil.threads){s.appendChild(el('h3',{},'GIL'));table(s,['thread','tid','held','waited','wait %','switches'],"
    "p.gil.threads.map(function(t){return [t.name||'-',t.tid,((t.hold_ns||0)/1e6).toFixed(1)+' ms',(t.wait_ns/1e6).toFixed(1)+' ms',"
    "(100*(t.wait_ratio||0)).toFixed(1),t.switches==null?'-':t.switches];}),'gil-'+p.pid);}"
    "if(p.alloc&&p.alloc.peak&&p.alloc.peak.top){s.appendChild(el('h3',{},'Python memory at its peak ('+bytes(p.alloc.peak.bytes)+')'));"
    "table(s,['line','size','count'],p.alloc.peak.top.map(function(a){return [a.file+':'+a.line,bytes(a.size),a.count];}),'alloc-'+p.pid);}"
    "if(p.samples&&p.samples.top){s.appendChild(el('h3',{},'hottest functions ('+p.samples.thread_samples+' samples)'));"
    "table(s,['function','file:line','self','total'],p.samples.top.map(function(f){return [f.function,f.file+':'+f.line,f.self,f.total];}),'samples-'+p.pid);}"
    "root.appendChild(s);});}\n"
    "function timeline(tr,root){var ev=(tr.traceEvents||[]).filter(function(e){return e.ph==='X'&&e.cat==='gil';});"
    "if(!ev.length){root.appendChild(el('p',{},'no GIL timeline in this session'));return;}"
    "var lanes={},names={},t0=Infinity,t1=-Infinity;(tr.traceEvents||[]).forEach(function(e){if(e.ph==='M'&&e.name==='thread_name')names[e.pid+'/'+e.tid]=e.args.name;});"
    "ev.forEach(function(e){var k=e.pid+'/'+e.tid;(lanes[k]=lanes[k]||[]).push(e);t0=Math.min(t0,e.ts);t1=Math.max(t1,e.ts+e.dur);});"
    "var keys=Object.keys(lanes),W=900,L=160,H=18,ns='http://www.w3.org/2000/svg',svg=document.createElementNS(ns,'svg');"
    "svg.setAttribute('width',W+L);svg.setAttribute('height',keys.length*H+20);svg.setAttribute('id','gil-timeline');"
    "keys.forEach(function(k,i){var t=document.createElementNS(ns,'text');t.setAttribute('x',2);t.setAttribute('y',i*H+13);"
    "t.setAttribute('class','lane');t.textContent=(names[k]||k);svg.appendChild(t);lanes[k].forEach(function(e){"
    "var r=document.createElementNS(ns,'rect');r.setAttribute('x',L+(e.ts-t0)/(t1-t0)*W);r.setAttribute('y',i*H+2);"
    "r.setAttribute('width',Math.max(0.5,e.dur/(t1-t0)*W));r.setAttribute('height',H-4);"
    "r.setAttribute('fill',e.name==='GIL held'?'#2ca02c':e.name==='GIL wait'?'#d62728':'#ff7f0e');svg.appendChild(r);});});"
    "root.appendChild(svg);root.appendChild(el('p',{},'green: holds the GIL, red: waits for it, orange: hand-off; '+"
    "((t1-t0)/1e6).toFixed(3)+' s'));}\n"
    "function data(id){var e=document.getElementById(id);return e?JSON.parse(e.textContent):null;}\n"
    "var report=data('report'),trace=data('trace');if(report)summary(report,document.getElementById('summary'));"
    "if(trace)timeline(trace,document.getElementById('timeline'));document.body.setAttribute('data-ready','1');\n";

static void put_escaped(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '<')
            fputs("&lt;", out);
        else if (c == '>')
            fputs("&gt;", out);
        else if (c == '&')
            fputs("&amp;", out);
        else if (c == '"')
            fputs("&quot;", out);
        else
            fputc(c, out);
    }
}

/* JSON inside a script element: "</" would end it, so it is "<\/". */
static void put_json(FILE *out, const char *id, const char *s, size_t n)
{
    fprintf(out, "<script type=\"application/json\" id=\"%s\">", id);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '<' && i + 1 < n && s[i + 1] == '/')
            fputs("<\\", out);
        else
            fputc(s[i], out);
    }
    fputs("</script>\n", out);
}

static void put_base64(FILE *out, const unsigned char *s, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        fputc(a[v >> 18 & 63], out);
        fputc(a[v >> 12 & 63], out);
        fputc(i + 1 < n ? a[v >> 6 & 63] : '=', out);
        fputc(i + 2 < n ? a[v & 63] : '=', out);
    }
}

static void put_part(FILE *out, const at_html_part_t *p, int index)
{
    if (p->kind == AT_HTML_SVG) {
        fprintf(out, "<h2>");
        put_escaped(out, p->title, strlen(p->title));
        fprintf(out, "</h2>\n<object type=\"image/svg+xml\" id=\"svg-%d\" data=\"data:image/svg+xml;base64,", index);
        put_base64(out, (const unsigned char *)p->data, p->len);
        fprintf(out, "\"></object>\n");
    } else if (p->kind == AT_HTML_TEXT) {
        fprintf(out, "<h2>");
        put_escaped(out, p->title, strlen(p->title));
        fprintf(out, "</h2>\n<details><summary>the whole text report</summary><pre id=\"text\">");
        put_escaped(out, p->data, p->len);
        fprintf(out, "</pre></details>\n");
    }
}

int at_html_write(FILE *out, const char *title, const at_html_part_t *parts, int n)
{
    fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    put_escaped(out, title, strlen(title));
    fprintf(out, "</title><style>%s</style></head>\n<body>\n<h1>", style);
    put_escaped(out, title, strlen(title));
    fprintf(out, "</h1>\n<pre id=\"errors\"></pre>\n<div id=\"summary\"></div>\n<h2>GIL timeline</h2>\n"
                 "<div id=\"timeline\"></div>\n");
    for (int i = 0; i < n; i++)
        if (parts[i].data && parts[i].len)
            put_part(out, &parts[i], i);
    for (int i = 0; i < n; i++)
        if (parts[i].data && parts[i].len && (parts[i].kind == AT_HTML_JSON || parts[i].kind == AT_HTML_TRACE))
            put_json(out, parts[i].kind == AT_HTML_JSON ? "report" : "trace", parts[i].data, parts[i].len);
    fprintf(out, "<script>\n%s</script>\n</body></html>\n", script);
    return ferror(out) ? -EIO : 0;
}
